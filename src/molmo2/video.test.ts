import { describe, expect, it } from 'vitest';
import { formatTime, isVariableFrameRate, presentedFrameIndex, rangeSampleTimes, sampleTimes } from './video.ts';

describe('sampleTimes (uniform_last_frame)', () => {
  it('samples every 0.5 s and appends the last instant', () => {
    expect(sampleTimes(2.2)).toEqual([0, 0.5, 1, 1.5, 2, 2.2]);
    // A duration on the grid is not duplicated: arange excludes D, then D is appended once.
    expect(sampleTimes(1)).toEqual([0, 0.5, 1]);
  });

  it('switches to uniform spacing past (N − 1) / fps seconds', () => {
    const atLimit = sampleTimes(191.5);
    expect(atLimit).toHaveLength(384);
    expect(atLimit[383]).toBe(191.5);
    expect(atLimit[382]).toBe(191);
    const past = sampleTimes(191.6);
    expect(past).toHaveLength(384);
    expect(past[0]).toBe(0);
    expect(past[383]).toBe(191.6);
    expect(past[1]).toBeCloseTo(191.6 / 383, 12);
  });

  it('uses the browser cap the same way', () => {
    expect(sampleTimes(31.5, { maxFrames: 64 })).toHaveLength(64);
    expect(sampleTimes(31.5, { maxFrames: 64 })[1]).toBe(0.5);
    const long = sampleTimes(600, { maxFrames: 64 });
    expect(long).toHaveLength(64);
    expect(long[1]).toBeCloseTo(600 / 63, 10);
  });

  it('honours another maximum rate', () => {
    expect(sampleTimes(1, { maxFps: 4 })).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });

  it('offsets a range', () => {
    expect(rangeSampleTimes(10, 11.2)).toEqual([10, 10.5, 11, 11.2]);
  });

  it('handles empty and invalid durations', () => {
    expect(sampleTimes(0)).toEqual([0]);
    expect(sampleTimes(-1)).toEqual([]);
    expect(sampleTimes(Number.NaN)).toEqual([]);
  });
});

describe('presentedFrameIndex', () => {
  const ts = [0, 1 / 30, 2 / 30, 3 / 30, 4 / 30];
  it('returns the last frame whose timestamp is ≤ t', () => {
    expect(presentedFrameIndex(0, ts)).toBe(0);
    expect(presentedFrameIndex(0.05, ts)).toBe(1);
    expect(presentedFrameIndex(2 / 30, ts)).toBe(2);
    expect(presentedFrameIndex(10, ts)).toBe(4);
    expect(presentedFrameIndex(-1, ts)).toBe(0);
    expect(presentedFrameIndex(1, [])).toBe(-1);
  });

  it('takes the frame at a sample time that equals its timestamp, and the earlier one just short of it', () => {
    // 10 fps in a 10240 timescale; a range from frame 1 sampled at 2 fps lands on frames 1, 6, 11, …
    const tenFps = Array.from({ length: 30 }, (_, k) => (k * 1024) / 10240);
    expect(rangeSampleTimes(tenFps[1], tenFps[29]).map((t) => presentedFrameIndex(t, tenFps))).toEqual([1, 6, 11, 16, 21, 26, 29]);
    // 29.97 fps: 0.5 s is 0.5 ms before frame 15, so frame 14 is presented (the nearest would be 15).
    const ntsc = Array.from({ length: 150 }, (_, k) => (k * 1001) / 30000);
    expect(sampleTimes(ntsc[149]).map((t) => presentedFrameIndex(t, ntsc))).toEqual([0, 14, 29, 44, 59, 74, 89, 104, 119, 134, 149]);
  });
});

describe('formatTime', () => {
  it('prints mm:ss.mmm', () => {
    expect(formatTime(0)).toBe('00:00.000');
    expect(formatTime(61.0405)).toBe('01:01.041');
    expect(formatTime(3723.5)).toBe('1:02:03.500');
  });
});

describe('isVariableFrameRate', () => {
  it('is false for regular frames, including millisecond-rounded 29.97 fps', () => {
    expect(isVariableFrameRate(Array.from({ length: 30 }, (_, i) => i / 10))).toBe(false);
    expect(isVariableFrameRate(Array.from({ length: 300 }, (_, i) => Math.round((i * 1001) / 30) / 1000))).toBe(false);
    expect(isVariableFrameRate([0])).toBe(false);
    expect(isVariableFrameRate([0, 0.5])).toBe(false);
  });
  it('is true when gaps vary', () => {
    expect(isVariableFrameRate([0, 0.1, 0.15, 0.4, 0.45, 0.5])).toBe(true);
    expect(isVariableFrameRate([0, 1 / 30, 2 / 30, 3 / 30, 5 / 30, 6 / 30])).toBe(true); // one dropped frame
  });
});
