// Parser for Molmo2 answers: the "html-v2" <points>/<tracks> grammar, counting sentences and the older
// Molmo point formats. Platform-free. It never throws: what cannot be read becomes a warning.
//
// Mode: video when `opts.mode === 'video'`, or when `opts.fps` is given and no mode is set; images
// otherwise. In image mode a group's key is the 1-based image index and coordinates are relative to
// that image; in video mode the key is a timestamp in seconds and coordinates are relative to frames[0].
//
// On every text the reference parser (molmo2.md §14.4) accepts, the points are the same (same regexes,
// same 0 ≤ x ≤ W, 0 ≤ y ≤ H filter, first position kept for a repeated track id at one time). Beyond
// that it also reads tags cut off by max_new_tokens (the complete points before the cut), an `alt`
// containing '>', and the older Molmo formats.

export interface FrameSize {
  width: number;
  height: number;
}

export interface ParsedPoint {
  /** 1-based image index (images) or timestamp in seconds (video). */
  key: number;
  /** Object id as written by the model (stable across frames for tracks). */
  id: number;
  /** Pixels of the original frame (rotation applied). */
  x: number;
  y: number;
  /** 0–1 of the frame's width and height. */
  xNorm: number;
  yNorm: number;
  label?: string;
  kind: 'points' | 'tracks';
}

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

// The reference parser's expressions (molmo2.md §14.4), split so truncated text can be read too.
const TAG_START = /<(points|tracks|point)\b/g;
const GROUP = /(?:^|\t|:|,|;)([0-9.]+) ([0-9. ]+)/g;
const TRIPLE = /([0-9]+) ([0-9]{3,4}) ([0-9]{3,4})/g;
const COORD_CHARS = /^[0-9\t:;, .]*/;

const isVideo = (opts?: ParseOptions) => (opts?.mode ? opts.mode === 'video' : opts?.fps !== undefined);

/** Parses a whole answer. */
export function parseAnswer(text: string, frames: FrameSize[], opts?: ParseOptions): ParsedAnswer {
  return parse(text, frames, opts, true);
}

/**
 * Parses text as it streams in. `push` returns the points that became certain with this chunk (a
 * coordinate at the very end of the text could still grow a digit, so it waits); their `label` is
 * unset until the closing tag has arrived. `finish` returns exactly what `parseAnswer` gives for the
 * whole text, whatever the chunking.
 */
export function createAnswerParser(frames: FrameSize[], opts?: ParseOptions) {
  let text = '';
  let emitted = 0;
  return {
    push(chunk: string): ParsedPoint[] {
      text += chunk;
      const { points } = parse(text, frames, opts, false);
      const fresh = points.slice(emitted);
      emitted = points.length;
      return fresh;
    },
    /** The answer so far, without points that may still change. */
    current(): ParsedAnswer {
      return parse(text, frames, opts, false);
    },
    finish(): ParsedAnswer {
      return parse(text, frames, opts, true);
    },
  };
}

function parse(text: string, frames: FrameSize[], opts: ParseOptions | undefined, final: boolean): ParsedAnswer {
  const warnings: string[] = [];
  const points: ParsedPoint[] = [];
  const video = isVideo(opts);
  if (typeof text !== 'string') return { points, warnings: ['answer is not text'] };

  for (const m of text.matchAll(TAG_START)) {
    const start = m.index! + m[0].length;
    const kind = m[1];
    const { end: attrsEnd, closed: tagClosed } = scanTag(text, start);
    const tagEnd = tagClosed ? attrsEnd : -1;
    const attrs = text.slice(start, attrsEnd);
    if (kind === 'point' || !/\bcoords="/.test(attrs)) {
      // An unfinished older-format tag may still turn into anything: read it only once it is closed.
      if (tagEnd >= 0) legacyPoints(kind, attrs, frames, video, warnings, points);
      else if (final && /\b[xy]\d*="/.test(attrs)) warnings.push(`the <${kind}> tag is truncated; ignored it`);
      continue;
    }
    const label = readLabel(text, tagEnd, kind, final);
    const coordsAt = attrs.indexOf('coords="') + 'coords="'.length;
    const body = attrs.slice(coordsAt);
    const coords = COORD_CHARS.exec(body)![0];
    const stop = body[coords.length];
    const closed = stop === '"';
    if (stop !== undefined && !closed) warnings.push(`unexpected character "${stop}" in the coordinates of a <${kind}> tag; kept the complete points before it`);
    // Without its closing quote the last number may be cut short ("100" of "1000"), whether more text
    // is still coming or generation stopped there, so it is never read; streaming and whole-text
    // parsing therefore agree on every prefix.
    const usable = closed ? coords : coords.replace(/[0-9.]+$/, '');
    if (stop === undefined && final) warnings.push(`the <${kind}> tag is truncated; kept the complete points before the cut`);
    readGroups(usable, kind as 'points' | 'tracks', label, frames, video, warnings, points);
  }

  const count = readCount(text);
  if (count !== undefined && points.length > 0 && count !== points.length) {
    warnings.push(`the answer states ${count} but points to ${points.length}`);
  }
  const unique = [...new Set(warnings)];
  return count === undefined ? { points, warnings: unique } : { points, count, warnings: unique };
}

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

function readLabel(text: string, tagEnd: number, kind: string, final: boolean): string | undefined {
  if (tagEnd < 0 || text[tagEnd - 1] === '/') return undefined;
  const close = text.indexOf(`</${kind}>`, tagEnd + 1);
  // While streaming, a label is only known once its closing tag has arrived.
  if (close < 0 && !final) return undefined;
  const raw = close < 0 ? text.slice(tagEnd + 1) : text.slice(tagEnd + 1, close);
  const label = raw.replace(/<[^>]*>?/g, '').trim();
  return label || undefined;
}

function readGroups(
  coords: string,
  kind: 'points' | 'tracks',
  label: string | undefined,
  frames: FrameSize[],
  video: boolean,
  warnings: string[],
  out: ParsedPoint[],
) {
  const seen = new Set<string>();
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
      if (kind === 'tracks' && seen.has(dedupe)) {
        warnings.push(`object ${id} appears twice at ${keyText}; kept the first`);
        continue;
      }
      seen.add(dedupe);
      out.push(label === undefined ? { key, id, x, y, xNorm, yNorm, kind } : { key, id, x, y, xNorm, yNorm, label, kind });
    }
  }
}

/** Older Molmo formats: <point x="" y="" alt=""> and <points x1="" y1="" x2="" …>, on a 0–100 scale. */
function legacyPoints(kind: string, attrs: string, frames: FrameSize[], video: boolean, warnings: string[], out: ParsedPoint[]) {
  const values = new Map<string, number>();
  for (const a of attrs.matchAll(/\b([xy]\d*)="([0-9.]+)"/g)) values.set(a[1], Number(a[2]));
  const size = frames[0];
  if (!size) return;
  const pairs: [number, number][] = [];
  if (kind === 'point' && values.has('x') && values.has('y')) pairs.push([values.get('x')!, values.get('y')!]);
  for (let i = 1; values.has(`x${i}`) && values.has(`y${i}`); i++) pairs.push([values.get(`x${i}`)!, values.get(`y${i}`)!]);
  if (pairs.length === 0) return;
  if (video) warnings.push('older Molmo point format in a video answer: points placed at 0 s');
  for (const [px, py] of pairs) {
    const xNorm = px / 100;
    const yNorm = py / 100;
    if (!(xNorm >= 0 && xNorm <= 1 && yNorm >= 0 && yNorm <= 1)) {
      warnings.push(`dropped an older-format point outside 0–100: ${px} ${py}`);
      continue;
    }
    out.push({ key: video ? 0 : 1, id: out.length + 1, x: xNorm * size.width, y: yNorm * size.height, xNorm, yNorm, kind: 'points' });
  }
}

function readCount(text: string): number | undefined {
  const total = /shows a total of (\d+)/.exec(text);
  if (total) return Number(total[1]);
  if (/\bThere are none\b/i.test(text)) return 0;
  const there = /\bThere (?:are|is) (\d+)\b/.exec(text);
  if (there) return Number(there[1]);
  const bare = /^\s*(\d+)\.?\s*$/.exec(text);
  if (bare) return Number(bare[1]);
  return undefined;
}
