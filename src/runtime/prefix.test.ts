import { beforeAll, describe, expect, it } from 'vitest';
import { buildPrompt, type BuiltPrompt } from '../molmo2/prompt.ts';
import { molmo2ChatTemplate } from '../molmo2/reference/molmo2-4b-chat-template.ts';
import { tinyConfig, tinyTokenizer } from '../molmo2/reference/testing.ts';
import { ByteLru } from './lru.ts';
import { reusablePrefix, type CachedSequence } from './prefix.ts';
import { TextStream } from './text-stream.ts';
import { visionBatches } from './visual-plan.ts';

const config = tinyConfig();
const video = (question: string, timestamps = [0, 0.5, 1], history?: { question: string; answer: string }[]) =>
  buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'video', timestamps }, conversation: { question, history } });
const seq = (p: BuiltPrompt, visualId: string | undefined, extra: number[] = []): CachedSequence => ({
  ids: [...p.inputIds, ...extra],
  types: [...p.tokenTypeIds, ...extra.map(() => 0)],
  visualId,
});

describe('reusable prefix', () => {
  let first: BuiltPrompt;
  let lastImage: number;
  beforeAll(() => {
    first = video('Point to the dog.');
    lastImage = first.tokenTypeIds.lastIndexOf(1);
  });

  it('keeps BOS + the visual blocks (and the shared template text) for another question on the same frames', () => {
    const next = video('How many cats?');
    const n = reusablePrefix(seq(first, 'A', [7, 8, 9]), seq(next, 'A'));
    expect(n).toBeGreaterThan(lastImage);
    expect(Array.from(next.inputIds.subarray(0, n))).toEqual(Array.from(first.inputIds.subarray(0, n)));
    expect(next.inputIds[n]).not.toBe(first.inputIds[n]);
    expect(next.tokenTypeIds.subarray(n).includes(1)).toBe(false);
  });

  it('keeps the earlier question too for a follow-up that replays it as history', () => {
    const answer = 'a dog';
    const follow = video('And the cat?', [0, 0.5, 1], [{ question: 'Point to the dog.', answer }]);
    // The cache holds the first prompt and the fed answer tokens. The template writes a space before a
    // replayed answer's <|im_start|>assistant, so the sequences part there, after the first question.
    const cached = seq(first, 'A', tinyTokenizer.encode(answer));
    const n = reusablePrefix(cached, seq(follow, 'A'));
    let common = 0;
    while (cached.ids[common] === follow.inputIds[common]) common++;
    expect(n).toBe(common);
    const question = tinyTokenizer.encode('Point to the dog.').length;
    expect(n).toBeGreaterThan(lastImage + question);
  });

  it('keeps nothing when the pixels differ, are unknown, or the frames differ', () => {
    const next = video('How many cats?');
    expect(reusablePrefix(seq(first, 'A'), seq(next, 'B'))).toBe(0);
    expect(reusablePrefix(seq(first, undefined), seq(next, undefined))).toBe(0);
    expect(reusablePrefix(seq(first, 'A'), seq(video('How many cats?', [0, 0.5, 1.5]), 'A'))).toBe(0);
    // One frame more: the old image tokens would have attended to it.
    expect(reusablePrefix(seq(first, 'A'), seq(video('Point to the dog.', [0, 0.5, 1, 1.5]), 'A'))).toBe(0);
  });

  it('leaves at least one token to prefill, and reuses text-only prefixes', () => {
    expect(reusablePrefix(seq(first, 'A'), seq(first, 'A'))).toBe(first.inputIds.length - 1);
    const text = (q: string) => buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'none' }, conversation: { question: q } });
    expect(reusablePrefix(seq(text('abc'), ''), seq(text('abd'), ''))).toBeGreaterThan(1);
    expect(reusablePrefix({ ids: [], types: [], visualId: undefined }, seq(first, 'A'))).toBe(0);
  });
});

describe('byte-bounded LRU', () => {
  it('evicts least recently used entries past the bound, never the protected ones', () => {
    const evicted: string[] = [];
    const lru = new ByteLru<string>(100, (_, k) => evicted.push(k));
    lru.set('a', 'A', 40);
    lru.set('b', 'B', 40);
    expect(lru.get('a')).toBe('A'); // a is now the most recent
    lru.set('c', 'C', 40);
    expect(evicted).toEqual(['b']);
    expect(lru.bytes).toBe(80);
    lru.set('d', 'D', 40, new Set(['a']));
    expect(evicted).toEqual(['b', 'c']);
    expect(lru.has('a') && lru.has('d')).toBe(true);
    expect(lru.set('huge', 'H', 101)).toBe(false);
    expect(evicted).toContain('huge');
    lru.clear();
    expect(lru.size).toBe(0);
    expect(lru.bytes).toBe(0);
  });
});

describe('streamed text', () => {
  it('equals decoding the whole sequence at every step, less a multi-byte character still split across tokens', () => {
    // Byte-level tokens: each id is one UTF-8 byte; a partial character decodes to U+FFFD.
    const decode = (ids: number[]) => new TextDecoder().decode(Uint8Array.from(ids));
    const bytes = Array.from(new TextEncoder().encode('a→b 🐦 ok'));
    const stream = new TextStream(decode);
    bytes.forEach((b, i) => expect(stream.push(b)).toBe(decode(bytes.slice(0, i + 1)).replace(/\uFFFD+$/, '')));
    expect(stream.text).toBe('a→b 🐦 ok');
  });
});

describe('vision batches', () => {
  it('groups consecutive items up to the crop bound without splitting an item', () => {
    expect(visionBatches([{ crops: 1 }, { crops: 1 }, { crops: 1 }], 2)).toEqual([[0, 1], [2]]);
    expect(visionBatches([{ crops: 9 }, { crops: 3 }, { crops: 5 }], 8)).toEqual([[0], [1, 2]]);
    expect(visionBatches([], 4)).toEqual([]);
  });
});
