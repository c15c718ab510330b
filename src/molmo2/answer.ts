// Parser for Molmo2 answers: the "html-v2" <points>/<tracks> grammar, counting sentences and the older
// Molmo point formats. Platform-free. It never throws: what cannot be read becomes a warning.
//
// Mode: video when `opts.mode === 'video'`, or when `opts.fps` is given and no mode is set; images
// otherwise. In image mode a group's key is the 1-based image index and coordinates are relative to
// that image (an `ImagePoint`); in video mode the key is a timestamp in seconds of the clip and
// coordinates are relative to frames[0] (a `VideoPoint`).
//
// On every text the reference parser (docs/molmo2-answers.md) accepts, the points are the same (same regexes,
// same 0 ≤ x ≤ W, 0 ≤ y ≤ H filter, first position kept for a repeated track id at one time). Beyond
// that it also reads tags cut off by max_new_tokens (the complete points before the cut), an `alt`
// containing '>', and the older Molmo formats. This is the whole-text parser; `answer-stream.ts` reads
// the same grammar token by token with the same results.

export interface FrameSize {
  width: number;
  height: number;
}

interface PointFields {
  /** Object id as written by the model (stable across frames for tracks). */
  id: number;
  /** Pixels of the original frame (rotation applied). */
  x: number;
  y: number;
  /** 0–1 of the frame's width and height. */
  xNorm: number;
  yNorm: number;
  label?: string;
  /** The tag the point was written in. */
  tag: 'points' | 'tracks';
}

/** A point on one of several images sent separately. */
export interface ImagePoint extends PointFields {
  kind: 'image';
  /** 1-based index of the image, as the model wrote it. */
  image: number;
}

/** A point on a frame of a video clip. */
export interface VideoPoint extends PointFields {
  kind: 'video';
  /** Timestamp in seconds from the clip's start, as the model wrote it. */
  clipTimeS: number;
}

export type ParsedPoint = ImagePoint | VideoPoint;

export interface ParsedAnswer {
  points: ParsedPoint[];
  /** The number stated by a counting sentence, when there is one. */
  count?: number;
  warnings: string[];
}

export interface ParseOptions {
  fps?: number;
  mode?: 'images' | 'video';
}

// The reference parser's expressions (docs/molmo2-answers.md), split so truncated text can be read too.
export const TAG_START = /<(points|tracks|point)\b/g;
const GROUP = /(?:^|\t|:|,|;)([0-9.]+) ([0-9. ]+)/g;
const TRIPLE = /([0-9]+) ([0-9]{3,4}) ([0-9]{3,4})/g;
const COORD_CHARS = /^[0-9\t:;, .]*/;
export const COORD_CHAR = /[0-9\t:;, .]/;
export const GROUP_SEPARATOR = /[\t:,;]/;

export const isVideo = (opts?: ParseOptions) => (opts?.mode ? opts.mode === 'video' : opts?.fps !== undefined);

/** Parses a whole answer. */
export function parseAnswer(text: string, frames: FrameSize[], opts?: ParseOptions): ParsedAnswer {
  return parse(text, frames, opts, true);
}

/**
 * Parses the part of an answer that has streamed in so far: what may still change is left out (the
 * last number of an unclosed tag, a label whose closing tag has not arrived, an unclosed older-format
 * tag). The streaming parser (`answer-stream.ts`) gives exactly this, chunk by chunk.
 */
export function parsePartialAnswer(text: string, frames: FrameSize[], opts?: ParseOptions): ParsedAnswer {
  return parse(text, frames, opts, false);
}

function parse(text: string, frames: FrameSize[], opts: ParseOptions | undefined, final: boolean): ParsedAnswer {
  const warnings: string[] = [];
  const points: ParsedPoint[] = [];
  const video = isVideo(opts);
  if (typeof text !== 'string') return { points, warnings: ['answer is not text'] };

  for (const m of text.matchAll(TAG_START)) {
    const start = m.index! + m[0].length;
    const name = m[1];
    const { end: attrsEnd, closed: tagClosed } = scanTag(text, start);
    const tagEnd = tagClosed ? attrsEnd : -1;
    const attrs = text.slice(start, attrsEnd);
    if (name === 'point' || !/\bcoords="/.test(attrs)) {
      // An unfinished older-format tag may still turn into anything: read it only once it is closed.
      if (tagEnd >= 0) points.push(...legacyPoints(name, attrs, frames, video, warnings, points.length + 1));
      else if (final && /\b[xy]\d*="/.test(attrs)) warnings.push(legacyTruncated(name));
      continue;
    }
    const label = readLabel(text, tagEnd, name, final);
    const coordsAt = attrs.indexOf('coords="') + 'coords="'.length;
    const body = attrs.slice(coordsAt);
    const coords = COORD_CHARS.exec(body)![0];
    const stop = body[coords.length];
    const closed = stop === '"';
    if (stop !== undefined && !closed) warnings.push(unexpectedCharacter(stop, name));
    // Without its closing quote the last number may be cut short ("100" of "1000"), whether more text
    // is still coming or generation stopped there, so it is never read; streaming and whole-text
    // parsing therefore agree on every prefix.
    const usable = closed ? coords : dropLastNumber(coords);
    if (stop === undefined && final) warnings.push(coordsTruncated(name));
    readGroups(usable, name as PointTag, label, frames, video, warnings, points, new Set());
  }

  const count = readCount(text);
  return finishAnswer(points, count, warnings);
}

export type PointTag = ParsedPoint['tag'];

/** The answer with the count check added and repeated warnings removed. */
export function finishAnswer(points: ParsedPoint[], count: number | undefined, warnings: string[]): ParsedAnswer {
  if (count !== undefined && points.length > 0 && count !== points.length) {
    warnings.push(`the answer states ${count} but points to ${points.length}`);
  }
  const unique = [...new Set(warnings)];
  return count === undefined ? { points, warnings: unique } : { points, count, warnings: unique };
}

export const dropLastNumber = (coords: string) => coords.replace(/[0-9.]+$/, '');
export const unexpectedCharacter = (stop: string, name: string) =>
  `unexpected character "${stop}" in the coordinates of a <${name}> tag; kept the complete points before it`;
export const coordsTruncated = (name: string) => `the <${name}> tag is truncated; kept the complete points before the cut`;
export const legacyTruncated = (name: string) => `the <${name}> tag is truncated; ignored it`;

/**
 * Finds where the attributes of the tag starting at `from` end: at the closing '>' (skipping '>' inside
 * quoted values), or, for a tag that was never closed, at the next tag or the end of the text.
 */
function scanTag(text: string, from: number): { end: number; closed: boolean } {
  let quoted = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === '>' && !quoted) return { end: i, closed: true };
    else if (c === '<' && !quoted) return { end: i, closed: false };
  }
  return { end: text.length, closed: false };
}

function readLabel(text: string, tagEnd: number, name: string, final: boolean): string | undefined {
  if (tagEnd < 0 || text[tagEnd - 1] === '/') return undefined;
  const close = text.indexOf(`</${name}>`, tagEnd + 1);
  // While streaming, a label is only known once its closing tag has arrived.
  if (close < 0 && !final) return undefined;
  return labelText(close < 0 ? text.slice(tagEnd + 1) : text.slice(tagEnd + 1, close));
}

/** A label as shown: the text between the tags, markup removed, trimmed; undefined when empty. */
export function labelText(raw: string): string | undefined {
  return raw.replace(/<[^>]*>?/g, '').trim() || undefined;
}

/** The set of "key/id" pairs a tracks tag has placed so far (a repeated pair keeps the first). */
export interface SeenPairs {
  has(pair: string): boolean;
  add(pair: string): void;
}

/** Reads the groups of a tag's coordinates (or of one ";"-separated part of them) into `out`. */
export function readGroups(
  coords: string,
  tag: PointTag,
  label: string | undefined,
  frames: FrameSize[],
  video: boolean,
  warnings: string[],
  out: ParsedPoint[],
  seen: SeenPairs,
) {
  for (const g of coords.matchAll(GROUP)) {
    const keyText = g[1];
    // What Python's float() accepts from [0-9.]+ ("5", "5.", ".5", "0.5"); anything else is garbled.
    if (!/^(\d+\.?\d*|\.\d+)$/.test(keyText)) {
      warnings.push(`skipped a group with the malformed key "${keyText}"`);
      continue;
    }
    const key = Number(keyText);
    let size: FrameSize | undefined;
    if (video) size = frames[0];
    else if (Number.isInteger(key) && key >= 1) size = frames[key - 1];
    if (!size) {
      warnings.push(video ? 'no frame size given for the video' : `the answer refers to image ${keyText}, which was not sent`);
      continue;
    }
    for (const p of g[2].matchAll(TRIPLE)) {
      const id = Number(p[1]);
      const xNorm = Number(p[2]) / 1000;
      const yNorm = Number(p[3]) / 1000;
      const x = xNorm * size.width;
      const y = yNorm * size.height;
      if (!(x >= 0 && x <= size.width && y >= 0 && y <= size.height)) {
        warnings.push(`dropped point ${id} at ${keyText}: coordinates ${p[2]} ${p[3]} lie outside 0–1000`);
        continue;
      }
      // A track has one position per object per frame; keep the first (as the reference does).
      const dedupe = `${key}/${id}`;
      if (tag === 'tracks' && seen.has(dedupe)) {
        warnings.push(`object ${id} appears twice at ${keyText}; kept the first`);
        continue;
      }
      seen.add(dedupe);
      out.push(makePoint(video, key, { id, x, y, xNorm, yNorm, tag, ...(label === undefined ? {} : { label }) }));
    }
  }
}

function makePoint(video: boolean, key: number, fields: PointFields): ParsedPoint {
  return video ? { kind: 'video', clipTimeS: key, ...fields } : { kind: 'image', image: key, ...fields };
}

/**
 * Older Molmo formats: <point x="" y="" alt=""> and <points x1="" y1="" x2="" …>, on a 0–100 scale.
 * Their ids run on from the points before the tag, starting at `firstId`.
 */
export function legacyPoints(name: string, attrs: string, frames: FrameSize[], video: boolean, warnings: string[], firstId: number): ParsedPoint[] {
  const values = new Map<string, number>();
  for (const a of attrs.matchAll(/\b([xy]\d*)="([0-9.]+)"/g)) values.set(a[1], Number(a[2]));
  const size = frames[0];
  if (!size) return [];
  const pairs: [number, number][] = [];
  if (name === 'point' && values.has('x') && values.has('y')) pairs.push([values.get('x')!, values.get('y')!]);
  for (let i = 1; values.has(`x${i}`) && values.has(`y${i}`); i++) pairs.push([values.get(`x${i}`)!, values.get(`y${i}`)!]);
  if (pairs.length === 0) return [];
  if (video) warnings.push('older Molmo point format in a video answer: points placed at 0 s');
  const out: ParsedPoint[] = [];
  for (const [px, py] of pairs) {
    const xNorm = px / 100;
    const yNorm = py / 100;
    if (!(xNorm >= 0 && xNorm <= 1 && yNorm >= 0 && yNorm <= 1)) {
      warnings.push(`dropped an older-format point outside 0–100: ${px} ${py}`);
      continue;
    }
    out.push(makePoint(video, video ? 0 : 1, { id: firstId + out.length, x: xNorm * size.width, y: yNorm * size.height, xNorm, yNorm, tag: 'points' }));
  }
  return out;
}

/**
 * The counting sentences, most telling first; an answer's count is the first match of the first rule
 * that matches. `lead` bounds how long a match is before its number ends (for scanning a stream).
 */
export const COUNT_RULES: { pattern: RegExp; lead: number; value(m: RegExpExecArray): number }[] = [
  { pattern: /shows a total of (\d+)/g, lead: 17, value: (m) => Number(m[1]) },
  { pattern: /\bThere are none\b/gi, lead: 14, value: () => 0 },
  { pattern: /\bThere (?:are|is) (\d+)\b/g, lead: 10, value: (m) => Number(m[1]) },
];

/** A bare number, the whole answer: "7" or " 7. ". */
export const BARE_COUNT = /^\s*(\d+)\.?\s*$/;

function readCount(text: string): number | undefined {
  for (const rule of COUNT_RULES) {
    rule.pattern.lastIndex = 0;
    const m = rule.pattern.exec(text);
    if (m) return rule.value(m);
  }
  const bare = BARE_COUNT.exec(text);
  return bare ? Number(bare[1]) : undefined;
}

/** The points of a video answer (an answer parsed in video mode has no others). */
export function videoPoints(points: ParsedPoint[]): VideoPoint[] {
  return points.filter((p): p is VideoPoint => p.kind === 'video');
}
