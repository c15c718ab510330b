import { describe, expect, it } from 'vitest';
import { defaultMaxMeanPx, diffRuns, type DiffPoint } from './compare-diff.ts';

// Points on a 320×240 frame at 10 fps: frame k is at k / 10 s.
const pt = (trackId: number, frame: number, x: number, y: number, label: string | null = 'cup'): DiffPoint => ({ trackId, label, frame, timeS: frame / 10, xPx: x, yPx: y });
const opts = { maxMeanPx: defaultMaxMeanPx(320, 240) }; // 40 px

describe('diffRuns', () => {
  it('pairs tracks by position, not by the ids the model happened to give them', () => {
    // Run B numbers the same two cups the other way round.
    const a = [pt(1, 0, 100, 100), pt(1, 1, 110, 100), pt(2, 0, 250, 200), pt(2, 1, 250, 190)];
    const b = [pt(1, 0, 253, 204), pt(1, 1, 250, 190), pt(2, 0, 100, 100), pt(2, 1, 116, 108)];
    const d = diffRuns(a, b, opts);
    expect(d.pairs.map((p) => [p.a.trackId, p.b.trackId, p.matchedBy])).toEqual([
      [1, 2, 'position'],
      [2, 1, 'position'],
    ]);
    expect(d.onlyA).toEqual([]);
    expect(d.onlyB).toEqual([]);
    // A#1 ↔ B#2: 0 px at frame 0, 10 px at frame 1 (6-8-10).
    expect(d.pairs[0]).toMatchObject({ shared: 2, meanPx: 5, maxPx: 10, maxAt: { frame: 1 }, onlyA: [], onlyB: [] });
    // A#2 ↔ B#1: 5 px at frame 0 (3-4-5), 0 px at frame 1.
    expect(d.pairs[1]).toMatchObject({ shared: 2, meanPx: 2.5, maxPx: 5, maxAt: { frame: 0 } });
  });

  it('lists the frames only one run has a point on', () => {
    const a = [pt(1, 0, 10, 10), pt(1, 2, 10, 10), pt(1, 4, 10, 10)];
    const b = [pt(1, 4, 13, 14), pt(1, 0, 10, 10), pt(1, 3, 10, 10), pt(1, 6, 10, 10)];
    const [p] = diffRuns(a, b, opts).pairs;
    expect(p.shared).toBe(2);
    expect(p.meanPx).toBeCloseTo(2.5);
    expect(p.onlyA.map((x) => x.frame)).toEqual([2]);
    expect(p.onlyB.map((x) => x.frame)).toEqual([3, 6]);
    expect(p.a.points).toBe(3);
    expect(p.b.points).toBe(4);
  });

  it('leaves tracks unpaired when they are too far apart to be one object', () => {
    const a = [pt(1, 0, 160, 120), pt(2, 0, 80, 60)];
    const b = [pt(1, 0, 82, 62), pt(2, 0, 300, 20)];
    const d = diffRuns(a, b, opts);
    expect(d.pairs.map((p) => [p.a.trackId, p.b.trackId])).toEqual([[2, 1]]);
    expect(d.onlyA.map((t) => t.trackId)).toEqual([1]);
    expect(d.onlyB.map((t) => t.trackId)).toEqual([2]);
    // Just within the limit still pairs.
    expect(diffRuns([pt(1, 0, 0, 0)], [pt(7, 0, 24, 32)], opts).pairs).toHaveLength(1);
    expect(diffRuns([pt(1, 0, 0, 0)], [pt(7, 0, 25, 33)], opts).pairs).toHaveLength(0);
  });

  it('gives each track at most one partner, the closest first', () => {
    // Both of A's tracks are near B#1; A#2 is nearer, so A#1 is left alone.
    const d = diffRuns([pt(1, 0, 100, 100), pt(2, 0, 120, 100)], [pt(1, 0, 125, 100)], opts);
    expect(d.pairs.map((p) => [p.a.trackId, p.b.trackId])).toEqual([[2, 1]]);
    expect(d.onlyA.map((t) => t.trackId)).toEqual([1]);
  });

  it('pairs tracks with no frame in common by id and label', () => {
    const a = [pt(1, 0, 10, 10, 'cup'), pt(2, 0, 50, 50, 'cup')];
    const b = [pt(1, 5, 200, 200, 'cup'), pt(2, 5, 50, 50, 'box')];
    const d = diffRuns(a, b, opts);
    expect(d.pairs).toHaveLength(1);
    expect(d.pairs[0]).toMatchObject({ a: { trackId: 1 }, b: { trackId: 1 }, matchedBy: 'id', shared: 0, meanPx: null, maxPx: null });
    expect(d.pairs[0].onlyA.map((x) => x.frame)).toEqual([0]);
    expect(d.pairs[0].onlyB.map((x) => x.frame)).toEqual([5]);
    expect(d.onlyA.map((t) => t.trackId)).toEqual([2]);
    expect(d.onlyB.map((t) => [t.trackId, t.label])).toEqual([[2, 'box']]);
  });

  it('matches points by time when their frame is unknown', () => {
    const a = [{ ...pt(1, -1, 10, 10), timeS: 0.5 }];
    const b = [{ ...pt(1, -1, 13, 14), timeS: 0.5 }, { ...pt(1, -1, 10, 10), timeS: 0.6 }];
    const [p] = diffRuns(a, b, opts).pairs;
    expect(p).toMatchObject({ shared: 1, meanPx: 5, onlyA: [] });
    expect(p.onlyB).toEqual([{ frame: -1, timeS: 0.6 }]);
  });

  it('has nothing to pair when a run found nothing', () => {
    const d = diffRuns([pt(3, 0, 1, 1)], [], opts);
    expect(d).toEqual({ pairs: [], onlyA: [{ trackId: 3, label: 'cup', points: 1 }], onlyB: [] });
  });
});
