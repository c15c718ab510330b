import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAnswer, videoPoints } from './answer.ts';
import { frameIndexAt, groupTracks, nearestSampleIndex, placePoints, type Timeline } from './tracks.ts';

// A 30 fps clip of 3 s sampled at 2 fps; "uniform_last_frame"-style sampled times that are not on the
// 0.1 s grid (e.g. 1.4667 s) check the nearest-sample rule.
const frameTimestamps = Array.from({ length: 90 }, (_, i) => i / 30);
const timeline: Timeline = { sampledTimes: [0, 0.5, 1, 1.5, 2, 2.5, 2.9667], frameTimestamps };

describe('timestamp → sampled time → frame', () => {
  it('picks the nearest sampled time, ties going to the earlier one', () => {
    expect(nearestSampleIndex(0.2, [0, 0.5])).toBe(0);
    expect(nearestSampleIndex(0.3, [0, 0.5])).toBe(1);
    expect(nearestSampleIndex(0.25, [0, 0.5])).toBe(0);
    expect(nearestSampleIndex(3.0, timeline.sampledTimes)).toBe(6);
    expect(nearestSampleIndex(1, [])).toBe(-1);
  });

  it('picks the last frame with timestamp ≤ t + 1e-6', () => {
    expect(frameIndexAt(0, frameTimestamps)).toBe(0);
    expect(frameIndexAt(0.5, frameTimestamps)).toBe(15);
    expect(frameIndexAt(0.5 - 1e-7, frameTimestamps)).toBe(15); // float noise in i/fps
    expect(frameIndexAt(0.5 - 1e-3, frameTimestamps)).toBe(14);
    expect(frameIndexAt(2.9667, frameTimestamps)).toBe(89);
    expect(frameIndexAt(99, frameTimestamps)).toBe(89);
    expect(frameIndexAt(-1, [0.04, 0.08])).toBe(0);
    expect(frameIndexAt(1, [])).toBe(-1);
    // variable frame rate
    expect(frameIndexAt(0.3, [0, 0.1, 0.35, 0.4])).toBe(1);
  });

  it('agrees with a linear scan on random ascending timestamps (fixed seed)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 1, maxLength: 50 }), fc.double({ min: -1, max: 101, noNaN: true }), (ts, t) => {
        const sorted = [...ts].sort((a, b) => a - b);
        let expected = 0;
        sorted.forEach((s, i) => {
          if (s <= t + 1e-6) expected = i;
        });
        expect(frameIndexAt(t, sorted)).toBe(expected);
      }),
      { seed: 31337, numRuns: 200 },
    );
  });

  it('keeps each point’s coordinates and adds time and frame, warning on a timestamp far from every sample', () => {
    const r = parseAnswer('<points coords="1.5 1 500 500;3.0 2 100 100;7.0 3 200 200">x</points>', [{ width: 100, height: 100 }], { fps: 2 });
    const placed = placePoints(videoPoints(r.points), timeline);
    expect(placed.points.map((p) => [p.id, p.clipTimeS, p.time, p.sampleIndex, p.frameIndex, p.x])).toEqual([
      [1, 1.5, 1.5, 3, 45, 50],
      [2, 3, 2.9667, 6, 89, 10],
      [3, 7, 2.9667, 6, 89, 20],
    ]);
    expect(placed.warnings).toEqual(['timestamp 7 s is not one of the sampled times; placed at 2.9667 s']);
  });
});

describe('tracks', () => {
  const text =
    '<tracks coords="0.0 1 200 100 2 200 800 3 500 200;1.0 1 900 900 3 050 050 4 060 060;2.0 1 500 500 2 001 001;3.0 4 100 100">cars</tracks>';
  const frames = [{ width: 640, height: 360 }];

  it('groups by id in time order with gaps at sampled times where the object is missing', () => {
    const { tracks, warnings } = groupTracks(videoPoints(parseAnswer(text, frames, { fps: 2 }).points), timeline);
    expect(warnings).toEqual([]);
    expect(tracks.map((t) => t.id)).toEqual([1, 2, 3, 4]);
    expect(tracks.every((t) => t.label === 'cars')).toBe(true);
    const shape = (id: number) => tracks.find((t) => t.id === id)!.steps.map((s) => (s.point ? `${s.time}` : `(${s.time})`));
    expect(shape(1)).toEqual(['0', '(0.5)', '1', '(1.5)', '2']);
    expect(shape(2)).toEqual(['0', '(0.5)', '(1)', '(1.5)', '2']);
    expect(shape(3)).toEqual(['0', '(0.5)', '1']);
    expect(shape(4)).toEqual(['1', '(1.5)', '(2)', '(2.5)', '2.9667']);
    const four = tracks[3];
    expect(four.points.map((p) => [p.time, p.frameIndex, +p.x.toFixed(9), +p.y.toFixed(9)])).toEqual([
      [1, 30, 38.4, 21.6],
      [2.9667, 89, 64, 36],
    ]);
    expect(four.steps.map((s) => s.frameIndex)).toEqual([30, 45, 60, 75, 89]);
  });

  it('orders points by time even when the answer lists groups out of order', () => {
    const r = parseAnswer('<tracks coords="2.0 1 100 100;0.0 1 300 300">x</tracks>', frames, { fps: 2 });
    const { tracks } = groupTracks(videoPoints(r.points), timeline);
    expect(tracks[0].points.map((p) => p.time)).toEqual([0, 2]);
  });

  it('keeps the first of two points of one id that land on the same sampled time', () => {
    const r = parseAnswer('<tracks coords="0.4 1 100 100;0.6 1 300 300">x</tracks>', frames, { fps: 2 });
    const { tracks, warnings } = groupTracks(videoPoints(r.points), timeline);
    expect(tracks[0].points.map((p) => p.x)).toEqual([64]);
    expect(warnings.join()).toMatch(/two points at 0.5 s/);
  });

  it('without sampled times, points keep their timestamps', () => {
    const r = parseAnswer('<tracks coords="0.0 1 100 100;1.0 1 300 300">x</tracks>', frames, { fps: 2 });
    const { tracks, warnings } = groupTracks(videoPoints(r.points), { sampledTimes: [], frameTimestamps });
    expect(tracks[0].steps.map((s) => [s.time, s.frameIndex, s.point !== null])).toEqual([
      [0, 0, true],
      [1, 30, true],
    ]);
    expect(warnings.join()).toMatch(/no sampled times/);
  });
});
