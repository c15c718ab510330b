// One question over many videos: list the videos, sample each one as the app samples a range
// (src/molmo2/video.ts), ask a backend, and write the app's result file (molmo2-web-result) plus the
// chosen exports per video. Finished videos are skipped on a rerun; a video that cannot be read or
// answered is reported and the batch goes on.
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join, relative, resolve } from 'node:path';
import { buildResult, exportCocoKeypoints, exportCsv, exportCvatVideo, exportMot, exportResultJson, importResultJson, questionTask, type ResultJson } from '../../src/molmo2/export/index.ts';
import type { ResultStatus } from '../../src/molmo2/export/result.ts';
import { CSV_COLUMNS } from '../../src/molmo2/export/csv.ts';
import { rangeSampleTimes } from '../../src/molmo2/video.ts';
import { markerRadius } from '../../src/overlay/overlay-model.ts';
import type { BatchBackend } from './types.ts';
import { probeVideo, readFramesAt, type VideoProbe } from './video-frames.ts';

/** Files a folder is searched for (any file named on the command line is tried whatever its name). */
export const VIDEO_EXTENSIONS = ['.mp4', '.m4v', '.mov', '.webm', '.mkv', '.avi', '.ogv', '.mpg', '.mpeg'];

export type ExportKind = 'csv' | 'cvat' | 'coco' | 'mot';
export const EXPORT_KINDS: ExportKind[] = ['csv', 'cvat', 'coco', 'mot'];

export interface BatchOptions {
  /** Video files and folders (searched recursively). */
  inputs: string[];
  question: string;
  /** Seconds [start, end] of each video to sample; the whole video when absent (clipped to its length). */
  range?: [number, number];
  /** Frame cap per video (the reference's budget is 384; the app's default 64). */
  maxFrames: number;
  maxNewTokens: number;
  /** Folder for the result files. */
  out: string;
  exports: ExportKind[];
  backend: BatchBackend;
  app: { name: string; version: string };
  /** Stops the batch: questions in flight are dropped (nothing is written for them), so a rerun redoes them. */
  signal?: AbortSignal;
  onProgress?: (p: BatchProgress) => void;
  log?: (message: string) => void;
}

export interface VideoEntry {
  path: string;
  /** Base of the output files: the path below its input folder, made flat and unique. */
  name: string;
}

export interface BatchProgress {
  total: number;
  /** Answered in this run. */
  done: number;
  /** Finished by an earlier run. */
  skipped: number;
  failed: number;
  /** Seconds left at this run's pace (undefined before the first answer). */
  etaSeconds?: number;
  /** Videos being worked on now. */
  active: string[];
  /** What just happened, e.g. "answered clip.mp4 (3 points)". */
  event?: string;
}

export interface BatchSummary {
  total: number;
  done: string[];
  skipped: string[];
  failed: { video: string; message: string }[];
  /** True when the batch was stopped before every video was tried. */
  interrupted: boolean;
  seconds: number;
}

/** The videos among `inputs` (files as given, folders searched), in a stable order, with unique output names. */
export async function listVideos(inputs: string[]): Promise<{ videos: VideoEntry[]; missing: string[] }> {
  const found: { path: string; name: string }[] = [];
  const missing: string[] = [];
  for (const input of inputs) {
    const path = resolve(input);
    const s = await stat(path).catch(() => undefined);
    if (!s) missing.push(input);
    else if (s.isDirectory()) {
      for (const file of await walk(path)) found.push({ path: file, name: relative(path, file) });
    } else found.push({ path, name: basename(path) });
  }
  const used = new Map<string, number>();
  const videos = found.map(({ path, name }) => {
    const flat = name.replace(/[\\/]+/g, '__').replace(/[^\w.\-]+/g, '_');
    const n = (used.get(flat) ?? 0) + 1;
    used.set(flat, n);
    return { path, name: n === 1 ? flat : `${flat}-${n}` };
  });
  return { videos, missing };
}

async function walk(dir: string): Promise<string[]> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) files.push(...(await walk(path)));
    else if (e.isFile() && VIDEO_EXTENSIONS.includes(extname(e.name).toLowerCase())) files.push(path);
  }
  return files;
}

/** The times sampled from a video: its range (or all of it) sampled as Molmo2 samples a clip, at most 2 fps. */
export function batchSampleTimes(probe: VideoProbe, o: Pick<BatchOptions, 'range' | 'maxFrames'>): { times: number[]; clipStartS: number } {
  const start = Math.min(Math.max(0, o.range?.[0] ?? 0), probe.durationS);
  const end = Math.min(o.range?.[1] ?? probe.durationS, probe.durationS);
  if (!(end > start) && probe.durationS > 0) {
    throw new Error(`the range ${o.range?.[0]}–${o.range?.[1]} s is outside the video (${probe.durationS.toFixed(2)} s long)`);
  }
  return { times: rangeSampleTimes(start, end, { maxFps: 2, maxFrames: o.maxFrames }), clipStartS: start };
}

export const resultFile = (out: string, v: VideoEntry) => join(out, `${v.name}.result.json`);

/** The result an earlier run finished for this same question, model and sampling (then the video is skipped), if any. */
async function finishedEarlier(file: string, o: BatchOptions): Promise<ResultJson | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const read = importResultJson(text);
  if (!read.ok) return undefined;
  const r = read.result;
  const same =
    r.status === 'complete' &&
    r.query.text === o.question &&
    r.model.id === o.backend.model.id &&
    r.sampling.maxFrames === o.maxFrames &&
    r.sampling.maxNewTokens === o.maxNewTokens &&
    sameRange(r, o.range);
  return same ? r : undefined;
}

/** Whether a result sampled the same part of its video as `range` asks (whole video when absent). */
function sameRange(r: ResultJson, range: BatchOptions['range']): boolean {
  const d = r.video.durationS;
  const start = Math.min(Math.max(0, range?.[0] ?? 0), d);
  const end = Math.min(range?.[1] ?? d, d);
  const last = r.video.sampledTimesS.at(-1) ?? NaN;
  return Math.abs((r.query.clipStartS ?? 0) - start) < 1e-9 && Math.abs(last - end) < 1e-9;
}

/** Writes through a temporary name, so an interrupted write never leaves a file that looks finished. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.partial`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

function exportText(result: ResultJson, kind: ExportKind): { suffix: string; text: string } {
  const box = Math.max(2, markerRadius(result.video.width, result.video.height) * 2);
  switch (kind) {
    case 'csv':
      return { suffix: '.csv', text: exportCsv(result) };
    case 'cvat':
      return { suffix: '.cvat.xml', text: exportCvatVideo(result) };
    case 'coco':
      return { suffix: '.coco.json', text: JSON.stringify(exportCocoKeypoints(result, { boxSize: box }), null, 2) + '\n' };
    case 'mot':
      return { suffix: '.mot.txt', text: exportMot(result, { boxSize: box }) };
  }
}

/** One video: probe, sample, decode the frames, ask, and write its files. Returns the result. */
async function answerVideo(v: VideoEntry, o: BatchOptions): Promise<ResultJson> {
  const started = performance.now();
  const probe = await probeVideo(v.path);
  const { times, clipStartS } = batchSampleTimes(probe, o);
  const frames = await readFramesAt(v.path, probe, times, o.backend.frameFormat);
  const readFramesMs = performance.now() - started;
  o.signal?.throwIfAborted();
  const answer = await o.backend.ask({ question: o.question, mode: 'video', frames, clipStartS, maxNewTokens: o.maxNewTokens, signal: o.signal });
  const result = buildResult({
    app: o.app,
    model: o.backend.model,
    sampling: { mode: 'uniform_last_frame', fps: 2, maxFrames: o.maxFrames, maxNewTokens: o.maxNewTokens },
    video: {
      // The file's own name, as the app writes it: Import JSON… over that video then matches without a warning.
      name: probe.name,
      width: probe.width,
      height: probe.height,
      durationS: probe.durationS,
      fps: probe.fps,
      decodedFrameCount: probe.decodedFrameCount,
      sampledTimesS: times,
      frameTimestampsS: probe.frameTimestampsS,
    },
    query: { text: o.question, task: questionTask(o.question), mode: 'video', clipStartS },
    rawText: answer.text,
    timingMs: { readFramesMs: Math.round(readFramesMs), ...answer.timingMs },
  });
  const status: ResultStatus = 'complete';
  // Exports first, the result file last: its presence is what marks the video finished.
  for (const kind of o.exports) {
    const { suffix, text } = exportText(result, kind);
    await writeAtomically(join(o.out, `${v.name}${suffix}`), text);
  }
  await writeAtomically(resultFile(o.out, v), exportResultJson(result, status));
  return result;
}

export async function runBatch(o: BatchOptions): Promise<BatchSummary> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  await mkdir(o.out, { recursive: true });
  const { videos, missing } = await listVideos(o.inputs);
  const summary: BatchSummary = { total: videos.length, done: [], skipped: [], failed: missing.map((m) => ({ video: m, message: `${m}: no such file or folder` })), interrupted: false, seconds: 0 };
  const todo: VideoEntry[] = [];
  for (const v of videos) {
    const earlier = await finishedEarlier(resultFile(o.out, v), o);
    if (!earlier) {
      todo.push(v);
      continue;
    }
    summary.skipped.push(v.path);
    // An export asked for now but not then is made from the finished result.
    for (const kind of o.exports) {
      const { suffix, text } = exportText(earlier, kind);
      const path = join(o.out, `${v.name}${suffix}`);
      if (!(await stat(path).catch(() => undefined))) await writeAtomically(path, text);
    }
  }
  if (summary.skipped.length) log(`${summary.skipped.length} of ${videos.length} videos were finished by an earlier run; skipping them`);

  const active = new Set<string>();
  const answeredMs: number[] = [];
  const progress = (event?: string) => {
    const left = todo.length - summary.done.length - failedHere();
    const mean = answeredMs.length ? answeredMs.reduce((a, b) => a + b, 0) / answeredMs.length : undefined;
    o.onProgress?.({
      total: videos.length,
      done: summary.done.length,
      skipped: summary.skipped.length,
      failed: summary.failed.length,
      etaSeconds: mean === undefined ? undefined : (left * mean) / 1000 / Math.max(1, Math.min(o.backend.concurrency, left)),
      active: [...active],
      event,
    });
  };
  const failedBefore = summary.failed.length;
  const failedHere = () => summary.failed.length - failedBefore;

  let next = 0;
  const worker = async () => {
    while (next < todo.length && !o.signal?.aborted) {
      const v = todo[next++];
      active.add(v.name);
      progress();
      const started = performance.now();
      try {
        const r = await answerVideo(v, o);
        answeredMs.push(performance.now() - started);
        summary.done.push(v.path);
        active.delete(v.name);
        progress(`answered ${v.name}: ${r.points.length} point${r.points.length === 1 ? '' : 's'}${r.count !== null ? `, count ${r.count}` : ''}`);
      } catch (e) {
        active.delete(v.name);
        if (o.signal?.aborted) break;
        const message = e instanceof Error ? e.message : String(e);
        summary.failed.push({ video: v.path, message });
        log(`${v.name}: ${message}`);
        progress(`failed ${v.name}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.backend.concurrency, todo.length)) }, worker));
  summary.interrupted = !!o.signal?.aborted && summary.done.length + failedHere() < todo.length;
  summary.seconds = (performance.now() - t0) / 1000;
  await writeBatchFiles(o, summary, [...videos]);
  return summary;
}

/** batch-report.json (what happened to each video) and, with CSV chosen, all.csv (every finished video's rows). */
async function writeBatchFiles(o: BatchOptions, s: BatchSummary, videos: VideoEntry[]): Promise<void> {
  const report = { question: o.question, model: o.backend.model, backend: o.backend.kind, total: s.total, done: s.done, skipped: s.skipped, failed: s.failed, interrupted: s.interrupted, seconds: Math.round(s.seconds * 10) / 10 };
  await writeAtomically(join(o.out, 'batch-report.json'), JSON.stringify(report, null, 2) + '\n');
  if (!o.exports.includes('csv')) return;
  const rows: string[] = [CSV_COLUMNS.join(',') + '\r\n'];
  for (const v of videos) {
    const text = await readFile(resultFile(o.out, v), 'utf8').catch(() => undefined);
    const read = text === undefined ? undefined : importResultJson(text);
    if (!read?.ok) continue;
    // The header line has no quoted fields, so its first CRLF ends it.
    const csv = exportCsv(read.result);
    rows.push(csv.slice(csv.indexOf('\r\n') + 2));
  }
  await writeAtomically(join(o.out, 'all.csv'), rows.join(''));
}
