// Streaming parser for Molmo2 answers: reads an answer chunk by chunk (token by token) and gives, at
// any moment, exactly what `parsePartialAnswer` gives for the text so far, and at the end exactly what
// `parseAnswer` gives for the whole text. Platform-free.
//
// The work for a chunk does not grow with the answer: every tag, coordinate group and counting
// sentence that can no longer change is read once and kept; only the unfinished ones are looked at
// again, and only the part of the text they still need is kept as a string (the rest is only joined
// again for `finish`).

import {
  COORD_CHAR,
  COUNT_RULES,
  GROUP_SEPARATOR,
  TAG_START,
  coordsTruncated,
  dropLastNumber,
  finishAnswer,
  isVideo,
  labelText,
  legacyPoints,
  legacyTruncated,
  readGroups,
  unexpectedCharacter,
  type FrameSize,
  type ParseOptions,
  type ParsedAnswer,
  type ParsedPoint,
  type PointTag,
  type SeenPairs,
} from './answer.ts';

export interface AnswerStream {
  /** Adds a chunk; returns the points that became certain with it (labels are added by `current`/`finish`). */
  push(chunk: string): ParsedPoint[];
  /** The answer so far: `parsePartialAnswer` of the text pushed so far. */
  current(): ParsedAnswer;
  /** The whole answer: `parseAnswer` of the text pushed so far. */
  finish(): ParsedAnswer;
  /** The text pushed so far. */
  text(): string;
  /** Characters of the text still kept as a string for the parts not finished yet. */
  retained(): number;
  /** Goes up whenever a chunk changes the points, a label, a warning or the count of `current()`. */
  version(): number;
}

const COORDS_ATTR = 'coords="';

/** One tag of the answer, as far as it has been read. Positions are offsets into the whole text. */
interface Tag {
  name: 'points' | 'tracks' | 'point';
  /** Offset just after the tag name: where its attributes start. */
  start: number;
  /** Attribute scan: next offset to read, and whether it is inside a quoted value. */
  scanAt: number;
  quoted: boolean;
  /** Where the attributes end (-1 while unknown), and whether they end with '>' (else at a '<'). */
  attrsEnd: number;
  closed: boolean;
  /** Offset of the first 'coords="' (-1 none yet), where to look for it next, and whether one follows a word boundary. */
  coordsAttr: number;
  coordsFrom: number;
  coordsWord: boolean;
  coordsWordFrom: number;
  /** The run of coordinate characters: where it has got to, and where it stopped ('' = not yet; undefined = at the end of the attributes). */
  runAt: number;
  stop: string | undefined | '';
  /** Start of the coordinate group not yet complete. */
  groupAt: number;
  seen: Set<string>;
  /** Points and warnings of the complete groups (or of an older-format tag). */
  points: ParsedPoint[];
  warnings: string[];
  /** Points and warnings of the group still growing (read again with each chunk). */
  tailPoints: ParsedPoint[];
  tailWarnings: string[];
  /** 'none': the tag has no label; 'pending': waiting for its closing tag. */
  label: { state: 'none' } | { state: 'pending' } | { state: 'known'; value: string | undefined };
  legacy: boolean;
  /** Points handed out by `push` so far. */
  emitted: number;
}

/** The first match of a counting rule in a growing text (a match touching the end may still change). */
class FirstMatch {
  private from = 0;
  private settled = false;
  match: RegExpExecArray | null = null;
  private readonly pattern: RegExp;
  constructor(
    pattern: RegExp,
    private readonly lead: number,
  ) {
    this.pattern = new RegExp(pattern.source, pattern.flags);
  }
  update(text: TextWindow) {
    if (this.settled) return;
    const m = text.exec(this.pattern, this.from);
    this.match = m;
    if (m && m.index + m[0].length < text.length) this.settled = true;
    else if (m) this.from = m.index;
    else this.from = Math.max(this.from, text.length - this.lead);
  }
  /** Oldest offset this scanner may still read (one before, for a leading \b). */
  get needs() {
    return this.settled ? Infinity : this.from - 1;
  }
}

/** `^\s*(\d+)\.?\s*$` over the whole text, one character at a time. */
class BareNumber {
  private state: 'lead' | 'digits' | 'dot' | 'trail' | 'dead' = 'lead';
  private digits = '';
  push(chunk: string) {
    for (const c of chunk) {
      if (this.state === 'dead') return;
      const space = /\s/.test(c);
      const digit = c >= '0' && c <= '9';
      if (this.state === 'lead') this.state = space ? 'lead' : digit ? 'digits' : 'dead';
      else if (this.state === 'digits') this.state = digit ? 'digits' : c === '.' ? 'dot' : space ? 'trail' : 'dead';
      else this.state = space ? 'trail' : 'dead';
      if (this.state === 'digits') this.digits += c;
    }
  }
  get value(): number | undefined {
    return this.state === 'digits' || this.state === 'dot' || this.state === 'trail' ? Number(this.digits) : undefined;
  }
}

/** The end of a growing text, from the oldest offset still needed; offsets are into the whole text. */
class TextWindow {
  private chunks: string[] = [];
  private kept = '';
  private keptFrom = 0;
  length = 0;
  append(chunk: string) {
    this.chunks.push(chunk);
    this.kept += chunk;
    this.length += chunk.length;
  }
  at(i: number): string {
    return this.kept[i - this.keptFrom];
  }
  slice(from: number, to = this.length): string {
    return this.kept.slice(from - this.keptFrom, to - this.keptFrom);
  }
  indexOf(s: string, from: number): number {
    const i = this.kept.indexOf(s, Math.max(0, from - this.keptFrom));
    return i < 0 ? -1 : i + this.keptFrom;
  }
  /** Runs a global regex from `from`; the match's index is an offset into the whole text. */
  exec(re: RegExp, from: number): RegExpExecArray | null {
    re.lastIndex = Math.max(0, from - this.keptFrom);
    const m = re.exec(this.kept);
    if (m) m.index += this.keptFrom;
    return m;
  }
  /** Forgets the text before `from`. */
  keepFrom(from: number) {
    const cut = Math.min(from, this.length) - this.keptFrom;
    if (cut > 0 && cut * 2 > this.kept.length) {
      this.kept = this.kept.slice(cut);
      this.keptFrom += cut;
    }
  }
  whole(): string {
    return this.chunks.join('');
  }
  get retained(): number {
    return this.kept.length;
  }
}

export function createAnswerStream(frames: FrameSize[], opts?: ParseOptions): AnswerStream {
  const video = isVideo(opts);
  const text = new TextWindow();
  const tags: Tag[] = [];
  /** Tags whose attributes or coordinates are still being read. */
  let reading: Tag[] = [];
  /** Tags waiting for their closing tag, and where to look for it next, per tag name. */
  const waiting = new Map<string, { tags: Tag[]; from: number }>();
  const tagStart = new RegExp(TAG_START.source, 'g');
  let tagsFrom = 0;
  const counts = COUNT_RULES.map((r) => new FirstMatch(r.pattern, r.lead));
  const bare = new BareNumber();
  let version = 0;
  /** Set when a chunk gives a waiting tag its label. */
  let labelled = false;

  function findTags(final: boolean) {
    for (;;) {
      const m = text.exec(tagStart, tagsFrom);
      if (!m) {
        tagsFrom = Math.max(tagsFrom, text.length - '<tracks'.length);
        return;
      }
      const end = m.index + m[0].length;
      // "<point" at the very end may yet become "<points" or no tag at all.
      if (end === text.length && !final) {
        tagsFrom = m.index;
        return;
      }
      const tag = newTag(m[1] as Tag['name'], end);
      tags.push(tag);
      reading.push(tag);
      tagsFrom = end;
    }
  }

  function newTag(name: Tag['name'], start: number): Tag {
    return {
      name,
      start,
      scanAt: start,
      quoted: false,
      attrsEnd: -1,
      closed: false,
      coordsAttr: -1,
      coordsFrom: start,
      coordsWord: false,
      coordsWordFrom: start,
      runAt: -1,
      stop: '',
      groupAt: -1,
      seen: new Set(),
      points: [],
      warnings: [],
      tailPoints: [],
      tailWarnings: [],
      label: { state: 'none' },
      legacy: false,
      emitted: 0,
    };
  }

  /** Reads what arrived for one tag; returns whether it still needs more text. */
  function readTag(tag: Tag): boolean {
    if (tag.attrsEnd < 0) scanAttributes(tag);
    const attrsLimit = tag.attrsEnd < 0 ? text.length : tag.attrsEnd;
    if (tag.name !== 'point') findCoordsAttr(tag, attrsLimit);
    const v2 = tag.name !== 'point' && tag.coordsWord;
    if (!v2) {
      if (tag.attrsEnd < 0) return true;
      // An older-format tag (or one without coordinates) is read once, when its attributes end.
      if (tag.closed) {
        tag.legacy = true;
        tag.points = legacyPoints(tag.name, text.slice(tag.start, tag.attrsEnd), frames, video, tag.warnings, 1);
      }
      return false;
    }
    if (tag.runAt < 0) tag.runAt = tag.groupAt = tag.coordsAttr + COORDS_ATTR.length;
    readCoordinates(tag, attrsLimit);
    if (tag.attrsEnd >= 0 && tag.label.state === 'none' && tag.closed && text.at(tag.attrsEnd - 1) !== '/') wait(tag);
    return tag.attrsEnd < 0 || tag.stop === '';
  }

  function scanAttributes(tag: Tag) {
    for (let i = tag.scanAt; i < text.length; i++) {
      const c = text.at(i);
      if (c === '"') tag.quoted = !tag.quoted;
      else if ((c === '>' || c === '<') && !tag.quoted) {
        tag.attrsEnd = i;
        tag.closed = c === '>';
        return;
      }
    }
    tag.scanAt = text.length;
  }

  function findCoordsAttr(tag: Tag, limit: number) {
    if (tag.coordsAttr < 0) {
      const i = text.indexOf(COORDS_ATTR, tag.coordsFrom);
      if (i >= 0 && i + COORDS_ATTR.length <= limit) tag.coordsAttr = i;
      else tag.coordsFrom = Math.max(tag.coordsFrom, limit - COORDS_ATTR.length + 1);
    }
    if (!tag.coordsWord) {
      const m = text.exec(/\bcoords="/g, tag.coordsWordFrom);
      if (m && m.index + COORDS_ATTR.length <= limit) tag.coordsWord = true;
      else tag.coordsWordFrom = Math.max(tag.coordsWordFrom, limit - COORDS_ATTR.length + 1);
    }
  }

  /** Advances the run of coordinate characters, reading each group once it is complete. */
  function readCoordinates(tag: Tag, limit: number) {
    if (tag.stop !== '') return;
    let i = tag.runAt;
    for (; i < limit; i++) {
      const c = text.at(i);
      if (!COORD_CHAR.test(c)) break;
      if (GROUP_SEPARATOR.test(c)) {
        readGroup(tag, text.slice(tag.groupAt, i), tag.points, tag.warnings, tag.seen);
        tag.groupAt = i; // the separator starts the next group, as in the whole-text expression
      }
    }
    tag.runAt = i;
    const ended = i < limit || tag.attrsEnd >= 0;
    if (ended) tag.stop = i < limit ? text.at(i) : undefined;
    // The last group, without its last number unless the closing quote follows.
    const last = text.slice(tag.groupAt, i);
    const usable = tag.stop === '"' ? last : dropLastNumber(last);
    tag.tailPoints = [];
    tag.tailWarnings = [];
    if (ended) {
      readGroup(tag, usable, tag.points, tag.warnings, tag.seen);
    } else {
      const local = new Set<string>();
      // Pairs of the growing group are kept apart until the group is complete.
      const seen: SeenPairs = { has: (k) => tag.seen.has(k) || local.has(k), add: (k) => void local.add(k) };
      readGroup(tag, usable, tag.tailPoints, tag.tailWarnings, seen);
    }
  }

  /** Reads one group (from its separator, or from the start of the coordinates) into `points`; labels are added later. */
  function readGroup(tag: Tag, group: string, points: ParsedPoint[], warnings: string[], seen: SeenPairs) {
    readGroups(group, tag.name as PointTag, undefined, frames, video, warnings, points, seen);
  }

  function wait(tag: Tag) {
    tag.label = { state: 'pending' };
    const w = waiting.get(tag.name);
    if (w && w.tags.length > 0) {
      w.tags.push(tag);
      w.from = Math.min(w.from, tag.attrsEnd + 1);
    } else waiting.set(tag.name, { tags: [tag], from: tag.attrsEnd + 1 });
  }

  /** Gives waiting tags their label once their closing tag has arrived. */
  function findLabels() {
    for (const [name, w] of waiting) {
      const close = `</${name}>`;
      while (w.tags.length > 0) {
        const at = text.indexOf(close, w.from);
        if (at < 0) {
          w.from = Math.max(w.from, text.length - close.length + 1);
          break;
        }
        const rest: Tag[] = [];
        for (const tag of w.tags) {
          if (tag.attrsEnd + 1 <= at) {
            tag.label = { state: 'known', value: labelText(text.slice(tag.attrsEnd + 1, at)) };
            labelled = true;
          } else rest.push(tag);
        }
        w.tags = rest;
        w.from = Math.min(...rest.map((t) => t.attrsEnd + 1));
      }
    }
  }

  /** Oldest offset a tag that is still being read may look at again. */
  function oldestNeeded(tag: Tag): number {
    // Until it has coordinates, a tag may turn out to be in an older format, read from its start.
    if (tag.name === 'point' || !tag.coordsWord) return tag.start;
    let need = tag.attrsEnd < 0 ? tag.scanAt : Infinity;
    if (tag.stop === '') need = Math.min(need, tag.groupAt);
    return need;
  }

  /** Forgets the text no unfinished part can need. */
  function trim() {
    let need = Math.min(tagsFrom, ...counts.map((c) => c.needs));
    for (const tag of reading) need = Math.min(need, oldestNeeded(tag));
    for (const w of waiting.values()) for (const tag of w.tags) need = Math.min(need, tag.attrsEnd + 1);
    text.keepFrom(Math.max(0, need - 1));
  }

  function update(final: boolean) {
    findTags(final);
    reading = reading.filter(readTag);
    findLabels();
    for (const c of counts) c.update(text);
  }

  /** A tag's points so far, with its label, or with ids running on from `firstId` (older formats). */
  function tagPoints(tag: Tag, firstId: number, label: string | undefined): ParsedPoint[] {
    const all = tag.tailPoints.length ? [...tag.points, ...tag.tailPoints] : tag.points;
    if (tag.legacy) return all.map((p, k) => ({ ...p, id: firstId + k }));
    return label === undefined ? all : all.map((p) => ({ ...p, label }));
  }

  /** How many points the tags before this one have (only needed when an older-format tag closes). */
  function pointsBefore(tag: Tag): number {
    let n = 0;
    for (const t of tags) {
      if (t === tag) break;
      n += t.points.length + t.tailPoints.length;
    }
    return n;
  }

  function labelOf(tag: Tag, final: boolean, whole: string): string | undefined {
    if (tag.label.state === 'known') return tag.label.value;
    if (tag.label.state === 'pending' && final) return labelText(whole.slice(tag.attrsEnd + 1));
    return undefined;
  }

  /** What of a tag `current()` shows, in short (to tell whether a chunk changed it). */
  function signature(tag: Tag): string {
    return `${tag.points.length}/${tag.tailPoints.length}/${tag.warnings.length}/${tag.tailWarnings.length}/${tag.stop}/${tag.legacy}/${tag.coordsWord}`;
  }

  function currentCount(): number | undefined {
    const rule = counts.findIndex((c) => c.match);
    return rule >= 0 ? COUNT_RULES[rule].value(counts[rule].match!) : bare.value;
  }

  function assemble(final: boolean): ParsedAnswer {
    const whole = final ? text.whole() : '';
    const points: ParsedPoint[] = [];
    const warnings: string[] = [];
    for (const tag of tags) {
      const v2 = tag.name !== 'point' && tag.coordsWord;
      if (!v2) {
        if (tag.legacy) {
          warnings.push(...tag.warnings);
          points.push(...tagPoints(tag, points.length + 1, undefined));
        } else if (final && /\b[xy]\d*="/.test(whole.slice(tag.start, tag.attrsEnd < 0 ? whole.length : tag.attrsEnd))) {
          warnings.push(legacyTruncated(tag.name));
        }
        continue;
      }
      if (tag.stop !== '' && tag.stop !== undefined && tag.stop !== '"') warnings.push(unexpectedCharacter(tag.stop, tag.name));
      if ((tag.stop === '' || tag.stop === undefined) && final) warnings.push(coordsTruncated(tag.name));
      warnings.push(...tag.warnings, ...tag.tailWarnings);
      points.push(...tagPoints(tag, 0, labelOf(tag, final, whole)));
    }
    return finishAnswer(points, currentCount(), warnings);
  }

  return {
    push(chunk) {
      if (!chunk) return [];
      const touched = reading.slice();
      const before = touched.map(signature);
      const countBefore = currentCount();
      text.append(chunk);
      bare.push(chunk);
      const known = tags.length;
      labelled = false;
      update(false);
      trim();
      // New points can only come from the tags that were being read or have just been found.
      touched.push(...tags.slice(known));
      if (labelled || currentCount() !== countBefore || touched.some((tag, k) => signature(tag) !== (before[k] ?? ''))) version++;
      const fresh: ParsedPoint[] = [];
      for (const tag of touched) {
        const count = tag.points.length + tag.tailPoints.length;
        if (count <= tag.emitted) continue;
        const firstId = tag.legacy ? pointsBefore(tag) + 1 : 0;
        fresh.push(...tagPoints(tag, firstId, undefined).slice(tag.emitted));
        tag.emitted = count;
      }
      return fresh;
    },
    current: () => assemble(false),
    version: () => version,
    finish() {
      update(true);
      return assemble(true);
    },
    text: () => text.whole(),
    retained: () => text.retained,
  };
}
