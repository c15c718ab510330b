import { describe, expect, it } from 'vitest';
import { estimate, formatSeconds, loadRates, markEvent, ratesAfter, runDecodeTokensPerSecond, runVisionMsPerFrame, saveRates, startMarks, type Marks } from './stage-estimate.ts';

const vision = (done: number, total = 5) => ({ type: 'stage', stage: 'vision', promptTokens: 900, done, total }) as const;
const token = (generated: number) => ({ type: 'token', tokenId: 1, text: 'x'.repeat(generated), generated }) as const;

/** Marks after events at the given times. */
function replay(events: [number, Parameters<typeof markEvent>[1]][]): Marks {
  return events.reduce((m, [at, e]) => markEvent(m, e, at), startMarks(0));
}

class MemoryStorage {
  items = new Map<string, string>();
  getItem = (k: string) => this.items.get(k) ?? null;
  setItem = (k: string, v: string) => void this.items.set(k, v);
}

describe('vision', () => {
  it('measures ms per frame after the first frame, leaving out its warm-up', () => {
    // The first frame takes 10 s (shaders compile), then 2 s each.
    const m = replay([[1000, vision(0)], [11_000, vision(1)], [13_000, vision(2)], [15_000, vision(3)]]);
    expect(runVisionMsPerFrame(m)).toBe(2000);
    const e = estimate(m, { progress: { done: 3, total: 5 }, maxNewTokens: 512, now: 15_500 });
    expect(e.elapsedS).toBeCloseTo(15.5);
    // Two frames at 2 s, half a second of them already spent.
    expect(e.leftS).toBeCloseTo(3.5);
    expect(e.bound).toBe('about');
  });

  it('has no estimate after the first frame alone unless an earlier run gave a rate', () => {
    const m = replay([[0, vision(0)], [10_000, vision(1)]]);
    expect(runVisionMsPerFrame(m)).toBeUndefined();
    const input = { progress: { done: 1, total: 5 }, maxNewTokens: 512, now: 10_000 };
    expect(estimate(m, input).leftS).toBeUndefined();
    // The bar still shows the frames done.
    expect(estimate(m, input).fraction).toBeCloseTo(0.2);
    expect(estimate(m, { ...input, rates: { visionMsPerFrame: 3000 } }).leftS).toBeCloseTo(12);
  });

  it('shows no estimate once a stage runs past it, nor when all frames are reported done', () => {
    const m = replay([[0, vision(0)], [1000, vision(1)], [2000, vision(2)]]);
    expect(estimate(m, { progress: { done: 2, total: 3 }, maxNewTokens: 512, now: 5000 }).leftS).toBeUndefined();
    const all = estimate(m, { progress: { done: 3, total: 3 }, maxNewTokens: 512, now: 2500 });
    expect(all.leftS).toBeUndefined();
    expect(all.fraction).toBeUndefined();
  });
});

describe('prefill and decode', () => {
  it('estimates the prefill from an earlier run’s tokens/s, only when one is known', () => {
    const m = replay([[0, vision(0, 1)], [4000, { type: 'stage', stage: 'prefill', promptTokens: 2000 }]]);
    const now = 6000;
    expect(estimate(m, { promptTokens: 2000, maxNewTokens: 512, now }).leftS).toBeUndefined();
    const e = estimate(m, { promptTokens: 2000, maxNewTokens: 512, now, rates: { prefillTokensPerSecond: 500 } });
    // 4 s for 2000 tokens, 2 s in.
    expect(e.leftS).toBeCloseTo(2);
    expect(e.fraction).toBeCloseTo(0.5);
    expect(e.elapsedS).toBeCloseTo(6);
  });

  it('bounds the decode by the answer limit at this run’s own rate once a few tokens are in', () => {
    const start = replay([[0, { type: 'stage', stage: 'decode' }], [100, token(1)]]);
    // One token: the earlier runs' rate.
    const early = estimate(start, { maxNewTokens: 101, now: 100, rates: { decodeTokensPerSecond: 10 } });
    expect(early.leftS).toBeCloseTo(10);
    expect(early.bound).toBe('at most');
    // Then 20 tokens/s here: 11 tokens in 0.5 s after the first.
    const m = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11].reduce((acc, g) => markEvent(acc, token(g), 100 + (g - 1) * 50), start);
    expect(runDecodeTokensPerSecond(m)).toBeCloseTo(20);
    const e = estimate(m, { maxNewTokens: 111, now: 600, rates: { decodeTokensPerSecond: 10 } });
    expect(e.leftS).toBeCloseTo(5);
    expect(e.fraction).toBeCloseTo(11 / 111);
  });

  it('the elapsed time counts from the question’s start across stages', () => {
    const m = replay([[3000, { type: 'stage', stage: 'prefill', promptTokens: 10 }], [8000, { type: 'stage', stage: 'decode' }]]);
    expect(m.stageStartedAt).toBe(8000);
    expect(estimate(m, { maxNewTokens: 10, now: 9000 }).elapsedS).toBeCloseTo(9);
  });
});

describe('kept rates', () => {
  const timings = { visionMs: 12_000, visionEncoded: 3, prefillTokens: 1000, prefillTokensPerSecond: 250, generatedTokens: 40, decodeTokensPerSecond: 8 };

  it('keeps this run’s measured rates, the vision rate after the first frame', () => {
    const m = replay([[0, vision(0, 3)], [6000, vision(1, 3)], [9000, vision(3, 3)]]);
    expect(ratesAfter(undefined, m, timings)).toEqual({ visionMsPerFrame: 1500, prefillTokensPerSecond: 250, decodeTokensPerSecond: 8 });
  });

  it('keeps the earlier rates where this run measured too little, and the whole vision time as a last resort', () => {
    const previous = { visionMsPerFrame: 900, prefillTokensPerSecond: 300, decodeTokensPerSecond: 9 };
    const short = { ...timings, prefillTokens: 5, generatedTokens: 2 };
    const oneFrame = replay([[0, vision(0, 1)], [5000, vision(1, 1)]]);
    expect(ratesAfter(previous, oneFrame, short)).toEqual(previous);
    expect(ratesAfter(undefined, oneFrame, short)).toEqual({ visionMsPerFrame: 4000, prefillTokensPerSecond: undefined, decodeTokensPerSecond: undefined });
  });

  it('are stored per model', () => {
    const s = new MemoryStorage() as unknown as Storage;
    saveRates('a:q4', { decodeTokensPerSecond: 7 }, s);
    saveRates('b:fp16', { decodeTokensPerSecond: 30 }, s);
    expect(loadRates('a:q4', s)).toEqual({ decodeTokensPerSecond: 7 });
    expect(loadRates('b:fp16', s)).toEqual({ decodeTokensPerSecond: 30 });
    expect(loadRates('c:q4', s)).toBeUndefined();
    (s as unknown as MemoryStorage).items.set('molmo2-web.stage-rates', 'not json');
    expect(loadRates('a:q4', s)).toBeUndefined();
  });
});

it('formats seconds', () => {
  expect(formatSeconds(4.4)).toBe('4 s');
  expect(formatSeconds(136)).toBe('2 min 16 s');
});
