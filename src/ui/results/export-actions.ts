// Downloads a run in each export format, and the annotated video through the export worker.
import * as Comlink from 'comlink';
import { exportCocoKeypoints, exportCsv, exportCvatVideo, exportMot, exportResultJson } from '../../molmo2/export/index.ts';
import type { ResultStatus } from '../../molmo2/export/result.ts';
import type { Run } from '../../state/results-types.ts';
import type { AnnotateApi, AnnotateProgress, AnnotatedVideo } from '../../../workers/annotate-api.ts';
import { installErrorTransfer } from '../../../workers/error-transfer.ts';
import type { VideoInfo } from '../../../workers/decode-api.ts';
import { markerRadius, runCount } from '../../overlay/overlay-model.ts';
import { tracksOfRun } from './use-tracks.ts';
import type { OverlaySettings } from '../../state/results-store.ts';

export type ExportFormat = 'json' | 'csv' | 'cvat' | 'coco' | 'mot';

export const EXPORT_FORMATS: { id: ExportFormat; name: string; note?: string }[] = [
  { id: 'json', name: 'JSON (lossless)' },
  { id: 'csv', name: 'CSV' },
  { id: 'cvat', name: 'CVAT video 1.1 XML' },
  { id: 'coco', name: 'COCO keypoints' },
  { id: 'mot', name: 'MOT', note: 'lossy: points as small boxes' },
];

/** How a finished run ended, as its result file says it; null while it is still running (nothing to export yet). */
export function fileStatus(run: Run): ResultStatus | null {
  switch (run.status) {
    case 'running':
      return null;
    case 'cancelled':
      return 'cancelled';
    case 'error':
      return 'failed';
    case 'done':
      // An imported file that said "edited" stays so.
      return run.result.status === 'edited' ? 'edited' : 'complete';
  }
}

/**
 * Why `format` would give an empty file for this run (it has no points), or null when there is
 * something to write. JSON always is: it keeps the answer's text and stated count.
 */
export function emptyExportMessage(run: Run, format: ExportFormat): string | null {
  const points = run.result.points;
  // MOT lines need a frame: a point whose frame is unknown is left out.
  const written = format === 'mot' ? points.filter((p) => p.frame >= 0) : points;
  if (format === 'json' || written.length > 0) return null;
  const name = EXPORT_FORMATS.find((f) => f.id === format)!.name;
  return `“${run.question}” has no points${points.length ? ' on a known frame' : ''}, so its ${name} file would be empty; nothing was saved. JSON keeps the answer's text.`;
}

/** "clip-point-to-the-cups" from the video's name and the question. */
export function exportBaseName(run: Run): string {
  const slug = (s: string) =>
    s
      .toLowerCase()
      .replace(/\.[a-z0-9]+$/, '')
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'result';
  return `${slug(run.result.video.name)}-${slug(run.question)}`;
}

/** The run in `format`; check `fileStatus` and `emptyExportMessage` first. */
export function exportFile(run: Run, format: ExportFormat, info: VideoInfo): { name: string; blob: Blob } {
  const base = exportBaseName(run);
  const r = run.result;
  const box = Math.max(2, markerRadius(info.width, info.height) * 2);
  switch (format) {
    case 'json': {
      const status = fileStatus(run);
      if (!status) throw new Error('A run still running has no result file yet.');
      return { name: `${base}.json`, blob: new Blob([exportResultJson(r, status)], { type: 'application/json' }) };
    }
    case 'csv':
      return { name: `${base}.csv`, blob: new Blob([exportCsv(r)], { type: 'text/csv' }) };
    case 'cvat':
      return { name: `${base}.cvat.xml`, blob: new Blob([exportCvatVideo(r)], { type: 'application/xml' }) };
    case 'coco':
      return { name: `${base}.coco.json`, blob: new Blob([JSON.stringify(exportCocoKeypoints(r, { boxSize: box }), null, 2)], { type: 'application/json' }) };
    case 'mot':
      return { name: `${base}.mot.txt`, blob: new Blob([exportMot(r, { boxSize: box })], { type: 'text/plain' }) };
  }
}

export function download(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

let annotator: Comlink.Remote<AnnotateApi> | undefined;
function annotateWorker(): Comlink.Remote<AnnotateApi> {
  installErrorTransfer();
  annotator ??= Comlink.wrap<AnnotateApi>(new Worker(new URL('../../../workers/annotate.worker.ts', import.meta.url), { type: 'module', name: 'annotate' }));
  return annotator;
}

/** The frames an annotated export covers: the range a range question was about, else the whole video. */
export function annotatedSpan(run: Run, info: VideoInfo): [number, number] {
  if (run.scope.kind === 'range' && run.scope.frames.length > 0) return [run.scope.frames[0], run.scope.frames[run.scope.frames.length - 1]];
  return [0, info.frameCount - 1];
}

export async function exportAnnotatedVideo(run: Run, info: VideoInfo, file: File, settings: OverlaySettings, onProgress: (p: AnnotateProgress) => void): Promise<{ name: string; video: AnnotatedVideo }> {
  const [firstFrame, lastFrame] = annotatedSpan(run, info);
  const label = run.result.points.find((p) => p.label)?.label;
  const video = await annotateWorker().annotate(
    { file, tracks: tracksOfRun(run, info.frameTimes), settings, badge: `${runCount(run.result)}${label ? ` ${label}` : ''}`, firstFrame, lastFrame },
    Comlink.proxy(onProgress),
  );
  return { name: `${exportBaseName(run)}.annotated.${video.extension.replace(/^\./, '')}`, video };
}

export function cancelAnnotatedVideo(): void {
  void annotator?.cancel();
}
