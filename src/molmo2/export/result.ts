// The native result file: lossless JSON with a documented schema (README.md, "Result files"). Every
// other export format is derived from it. Platform-free.

import { parseAnswer, videoPoints, type FrameSize, type ParseOptions, type ParsedAnswer, type ParsedPoint } from '../answer.ts';
import { frameIndexAt, placePoints } from '../tracks.ts';

export const RESULT_FORMAT = 'molmo2-web-result';
export const RESULT_VERSION = 4;

/**
 * How the run that made a result ended: answered in full, stopped by the user, or ended by an error
 * (its points are those read before the end), or corrected by hand ('edited': the file keeps the
 * model's points in `original`).
 */
export const RESULT_STATUSES = ['complete', 'cancelled', 'failed', 'edited'] as const;
export type ResultStatus = (typeof RESULT_STATUSES)[number];

interface ResultPointFields {
  /** Object id written by the model; stable across time for tracks, running for points. */
  trackId: number;
  label: string | null;
  /** The tag the model wrote the point in. */
  tag: 'points' | 'tracks';
  /** Sampled video time the point belongs to, seconds. */
  timeS: number;
  /** 0-based decoded frame index presented at timeS (-1 when unknown). */
  frame: number;
  xPx: number;
  yPx: number;
  xNorm: number;
  yNorm: number;
}

/** A point of a question sent as separate images. */
export interface ImageResultPoint extends ResultPointFields {
  kind: 'image';
  /** 1-based image index as the model wrote it (image k is the k-th of `video.sampledTimesS`). */
  image: number;
}

/** A point of a question sent as a video clip. */
export interface VideoResultPoint extends ResultPointFields {
  kind: 'video';
  /** Timestamp as the model wrote it: seconds from the clip's start (`query.clipStartS`). */
  clipTimeS: number;
}

export type ResultPoint = ImageResultPoint | VideoResultPoint;

/** What the model answered, kept when its points were corrected by hand (see `edits.ts`). */
export interface ResultOriginal {
  points: ResultPoint[];
  count: number | null;
}

export interface ResultJson {
  format: typeof RESULT_FORMAT;
  version: typeof RESULT_VERSION;
  /** ISO 8601 time the result was made. */
  createdAt: string;
  /**
   * How the run ended. Every file written since version 3 has it (`exportResultJson` stamps it);
   * absent in a result still being made and in files of versions 1 and 2; 'edited' once corrected.
   */
  status?: ResultStatus;
  app: { name: string; version: string };
  model: { id: string; dtype: string };
  sampling: {
    /** How frames were chosen, e.g. "uniform_last_frame" or "range". */
    mode: string;
    fps: number;
    maxFrames: number;
    maxNewTokens: number;
  };
  video: {
    name: string;
    width: number;
    height: number;
    durationS: number;
    /** Nominal frame rate; null when unknown (variable frame rate). */
    fps: number | null;
    decodedFrameCount: number;
    /** Times (s) of the frames shown to the model, and the decoded frame index of each. */
    sampledTimesS: number[];
    sampledFrames: number[];
  };
  query: {
    text: string;
    task: 'point' | 'track' | 'count' | 'other';
    /** 'video': frames sent as one video (keys are seconds); 'images': sent as separate images (keys are 1-based indices into sampledTimesS). */
    mode: 'video' | 'images';
    /**
     * Video time (s) of the clip's t = 0 as the model saw it: a selected range is sent as a clip that
     * starts at the range start, so a key k means video time clipStartS + k. 0 when absent.
     */
    clipStartS?: number;
    /**
     * A follow-up's conversation before this question, oldest first: each earlier question and the
     * model's text, as sent to the model in its chat format. Absent for a first question.
     */
    history?: { question: string; answer: string }[];
  };
  /** The model's answer exactly as generated. */
  rawText: string;
  /** Number stated by a counting sentence; null when the answer states none. */
  count: number | null;
  /** The points every export uses: the model's, or the corrected ones of an edited result. */
  points: ResultPoint[];
  warnings: string[];
  /** Timing figures in milliseconds (e.g. preprocessMs, prefillMs, decodeMs). */
  timingMs: Record<string, number>;
  /**
   * Since version 4: present only when the points were corrected by hand; the model's own points and
   * count (then `points` and `count` are the corrected ones, and the status is 'edited').
   */
  original?: ResultOriginal;
}

export interface ResultInput {
  app: ResultJson['app'];
  model: ResultJson['model'];
  sampling: ResultJson['sampling'];
  video: Omit<ResultJson['video'], 'sampledFrames'> & {
    /** Decoded frame timestamps (s); when absent they are taken as i / fps. */
    frameTimestampsS?: number[];
  };
  query: ResultJson['query'];
  rawText: string;
  timingMs?: Record<string, number>;
  createdAt?: string;
}

/** What a question asks for, read from its wording (the app's presets name their task themselves). */
export function questionTask(question: string): ResultJson['query']['task'] {
  if (/^\s*point\b/i.test(question)) return 'point';
  if (/^\s*track\b/i.test(question)) return 'track';
  if (/\bhow many\b|\bcount\b/i.test(question)) return 'count';
  return 'other';
}

/** How the answer to this question is parsed: the size of each image sent (or of the video's frames), and the mode. */
export function answerLayout(input: Pick<ResultInput, 'video' | 'query'>): { frames: FrameSize[]; opts: ParseOptions } {
  const size = { width: input.video.width, height: input.video.height };
  const frames = input.query.mode === 'images' ? input.video.sampledTimesS.map(() => size) : [size];
  return { frames, opts: { mode: input.query.mode } };
}

/**
 * Parses the model's answer and places its points on the video's timeline. `parsed` is the answer
 * already parsed (while it streams in, `rawText` so far read by the streaming parser).
 */
export function buildResult(input: ResultInput, parsed?: ParsedAnswer): ResultJson {
  const { frameTimestampsS, ...video } = input.video;
  const frameTimes =
    frameTimestampsS ?? (video.fps ? Array.from({ length: video.decodedFrameCount }, (_, i) => i / video.fps!) : []);
  const images = input.query.mode === 'images';
  if (!parsed) {
    const { frames, opts } = answerLayout(input);
    parsed = parseAnswer(input.rawText, frames, opts);
  }
  const warnings = [...parsed.warnings];
  const sampledFrames = video.sampledTimesS.map((t) => frameIndexAt(t, frameTimes));

  let points: ResultPoint[];
  if (images) {
    // Image k is the k-th sampled frame.
    points = parsed.points.flatMap((p) =>
      p.kind === 'image' ? [{ ...common(p), kind: 'image' as const, image: p.image, timeS: video.sampledTimesS[p.image - 1], frame: sampledFrames[p.image - 1] }] : [],
    );
  } else {
    // Keys are clip times; place them on the clip's sampled times, then report video times and frames.
    const start = input.query.clipStartS ?? 0;
    const clipTimes = video.sampledTimesS.map((t) => t - start);
    const placed = placePoints(videoPoints(parsed.points), { sampledTimes: clipTimes, frameTimestamps: [] });
    warnings.push(...placed.warnings);
    points = placed.points.map((p) => ({
      ...common(p),
      kind: 'video' as const,
      clipTimeS: p.clipTimeS,
      ...(p.sampleIndex >= 0
        ? { timeS: video.sampledTimesS[p.sampleIndex], frame: sampledFrames[p.sampleIndex] }
        : { timeS: p.clipTimeS + start, frame: frameIndexAt(p.clipTimeS + start, frameTimes) }),
    }));
  }
  return {
    format: RESULT_FORMAT,
    version: RESULT_VERSION,
    createdAt: input.createdAt ?? new Date().toISOString(),
    app: input.app,
    model: input.model,
    sampling: input.sampling,
    video: { ...video, sampledFrames },
    query: input.query,
    rawText: input.rawText,
    count: parsed.count ?? null,
    points,
    warnings,
    timingMs: input.timingMs ?? {},
  };
}

function common(p: ParsedPoint) {
  return { trackId: p.id, label: p.label ?? null, tag: p.tag, xPx: p.x, yPx: p.y, xNorm: p.xNorm, yNorm: p.yNorm };
}

/**
 * The result as a JSON file saying how its run ended (stable key order, 2-space indent). A result
 * corrected by hand (it keeps the model's `original`) is always 'edited'.
 */
export function exportResultJson(result: ResultJson, status: ResultStatus): string {
  const { format, version, createdAt, ...rest } = result;
  return JSON.stringify({ format, version, createdAt, status: result.original ? 'edited' : status, ...rest }, null, 2) + '\n';
}

export type ImportOutcome = { ok: true; result: ResultJson } | { ok: false; errors: string[] };

/**
 * Reads a result file, checking every field; never throws. Files of versions 1 and 2 have no
 * `status`, and those before version 4 no `original`; version 1 files (whose points had one `key`,
 * clip seconds or image index, and `kind` for the tag) are read as the current version.
 */
export function importResultJson(text: string): ImportOutcome {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return { ok: false, errors: [`not JSON: ${(e as Error).message}`] };
  }
  const errors: string[] = [];
  const v = new Checker(errors);
  if (!v.object(data, '')) return { ok: false, errors };
  if (data.format !== RESULT_FORMAT) errors.push(`format: expected "${RESULT_FORMAT}", found ${JSON.stringify(data.format)}`);
  else if (![1, 2, 3, RESULT_VERSION].includes(data.version as number)) {
    errors.push(`version: this app reads versions 1 to ${RESULT_VERSION}, the file has ${JSON.stringify(data.version)}`);
  }
  if (errors.length) return { ok: false, errors };
  // Before version 3 a file did not say how its run ended.
  if ((data.version as number) >= 3 || data.status !== undefined) v.oneOf(data.status, [...RESULT_STATUSES], 'status');
  if (data.version === 1) data = fromVersion1(data, v);
  if (errors.length) return { ok: false, errors: errors.slice(0, 20) };
  return checkResult({ ...(data as Loose), version: RESULT_VERSION }, v, errors);
}

/** A version 1 file's points as today's: each `key` becomes an image index or clip time (by the query's mode), `kind` its tag. */
function fromVersion1(data: Loose, v: Checker): Loose {
  const query = data.query;
  const points = data.points;
  if (!v.object(query, 'query') || !v.oneOf(query.mode, ['video', 'images'], 'query.mode') || !v.array(points, 'points')) return data;
  const converted = points.map((p, i) => {
    const at = `points[${i}]`;
    if (!v.object(p, at) || !v.number(p.key, `${at}.key`) || !v.oneOf(p.kind, ['points', 'tracks'], `${at}.kind`)) return p;
    const { key, kind, ...rest } = p;
    return query.mode === 'images' ? { ...rest, tag: kind, kind: 'image', image: key } : { ...rest, tag: kind, kind: 'video', clipTimeS: key };
  });
  return { ...data, points: converted };
}

function checkResult(data: Loose, v: Checker, errors: string[]): ImportOutcome {
  v.string(data.createdAt, 'createdAt');
  const { app, model, sampling } = data;
  if (v.object(app, 'app')) for (const k of ['name', 'version']) v.string(app[k], `app.${k}`);
  if (v.object(model, 'model')) for (const k of ['id', 'dtype']) v.string(model[k], `model.${k}`);
  if (v.object(sampling, 'sampling')) {
    v.string(sampling.mode, 'sampling.mode');
    for (const k of ['fps', 'maxFrames', 'maxNewTokens']) v.number(sampling[k], `sampling.${k}`);
  }
  if (v.object(data.video, 'video')) {
    const vd = data.video;
    v.string(vd.name, 'video.name');
    for (const k of ['width', 'height', 'durationS', 'decodedFrameCount']) v.number(vd[k], `video.${k}`);
    if (vd.fps !== null) v.number(vd.fps, 'video.fps');
    const times = v.numbers(vd.sampledTimesS, 'video.sampledTimesS');
    const frames = v.numbers(vd.sampledFrames, 'video.sampledFrames');
    if (times && frames && times.length !== frames.length) errors.push('video.sampledFrames: expected one frame per sampled time');
  }
  if (v.object(data.query, 'query')) {
    v.string(data.query.text, 'query.text');
    v.oneOf(data.query.task, ['point', 'track', 'count', 'other'], 'query.task');
    v.oneOf(data.query.mode, ['video', 'images'], 'query.mode');
    if (data.query.clipStartS !== undefined) v.number(data.query.clipStartS, 'query.clipStartS');
    if (data.query.history !== undefined && v.array(data.query.history, 'query.history')) {
      data.query.history.forEach((turn, i) => {
        if (!v.object(turn, `query.history[${i}]`)) return;
        v.string(turn.question, `query.history[${i}].question`);
        v.string(turn.answer, `query.history[${i}].answer`);
      });
    }
  }
  v.string(data.rawText, 'rawText');
  if (data.count !== null) v.number(data.count, 'count');
  // A point's kind follows from how the question was sent.
  const kind = (data.query as Loose | undefined)?.mode === 'images' ? 'image' : 'video';
  checkPoints(data.points, 'points', kind, v);
  if (data.original !== undefined && v.object(data.original, 'original')) {
    // Corrected points keep the model's; such a file says it was edited.
    if (data.status !== 'edited') errors.push(`status: expected edited (the file keeps the model's original points), found ${JSON.stringify(data.status) ?? 'nothing'}`);
    checkPoints(data.original.points, 'original.points', kind, v);
    if (data.original.count !== null) v.number(data.original.count, 'original.count');
  }
  if (v.array(data.warnings, 'warnings')) data.warnings.forEach((w, i) => v.string(w, `warnings[${i}]`));
  if (v.object(data.timingMs, 'timingMs')) for (const [k, n] of Object.entries(data.timingMs)) v.number(n, `timingMs.${k}`);
  return errors.length ? { ok: false, errors: errors.slice(0, 20) } : { ok: true, result: data as unknown as ResultJson };
}

function checkPoints(points: unknown, path: string, kind: 'image' | 'video', v: Checker): void {
  if (!v.array(points, path)) return;
  points.forEach((p, i) => {
    const at = `${path}[${i}]`;
    if (!v.object(p, at)) return;
    if (p.label !== null) v.string(p.label, `${at}.label`);
    v.oneOf(p.tag, ['points', 'tracks'], `${at}.tag`);
    if (v.oneOf(p.kind, [kind], `${at}.kind`)) v.number(kind === 'image' ? p.image : p.clipTimeS, `${at}.${kind === 'image' ? 'image' : 'clipTimeS'}`);
    for (const k of ['trackId', 'timeS', 'frame', 'xPx', 'yPx', 'xNorm', 'yNorm']) v.number(p[k], `${at}.${k}`);
  });
}

type Loose = Record<string, unknown>;

/** Collects "path: expected …" messages. */
class Checker {
  constructor(private readonly errors: string[]) {}
  private fail(path: string, what: string, found: unknown) {
    const shown = found === undefined ? 'nothing' : JSON.stringify(found)?.slice(0, 40);
    this.errors.push(`${path || 'the file'}: expected ${what}, found ${shown}`);
    return false;
  }
  object(x: unknown, path: string): x is Loose {
    return (typeof x === 'object' && x !== null && !Array.isArray(x)) || this.fail(path, 'an object', x);
  }
  array(x: unknown, path: string): x is unknown[] {
    return Array.isArray(x) || this.fail(path, 'a list', x);
  }
  string(x: unknown, path: string): boolean {
    return typeof x === 'string' || this.fail(path, 'text', x);
  }
  number(x: unknown, path: string): boolean {
    return (typeof x === 'number' && Number.isFinite(x)) || this.fail(path, 'a number', x);
  }
  numbers(x: unknown, path: string): number[] | undefined {
    if (!this.array(x, path)) return undefined;
    return x.every((n, i) => this.number(n, `${path}[${i}]`)) ? (x as number[]) : undefined;
  }
  oneOf(x: unknown, options: string[], path: string): boolean {
    return (typeof x === 'string' && options.includes(x)) || this.fail(path, `one of ${options.join(', ')}`, x);
  }
}
