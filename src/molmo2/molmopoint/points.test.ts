import { describe, expect, it } from 'vitest';
import { imagePatchMap, planImage, planVideoFrame } from '../image.ts';
import { constrainPointLogits, extractImagePoints, extractVideoPoints, pointChoices, pointTokenBounds, type PointRules } from './points.ts';

// A small generated vocabulary: ids < 100 are text; grounding ids start at 100.
const b = pointTokenBounds({ firstId: 100, nPatches: 10, nSubpatches: 4, locations: true, noMorePointsClass: true });
const RULES: PointRules = { preventRepeats: true, forcePatchSorted: true, forceSubpatchSorted: true };
const patch = (k: number) => b.patchStart + k;
const sub = (k: number) => b.subpatchStart + k;
const loc = (k: number) => b.locationStart + k;

/** The ids left allowed after `ids`. */
function allowed(ids: number[], rules = RULES): number[] {
  const scores = new Float32Array(b.locationEnd + 5);
  constrainPointLogits(b, ids, scores, rules);
  return [...scores.keys()].filter((i) => scores[i] !== -Infinity);
}
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('MolmoPoint grounding ids', () => {
  it('lie after the vocabulary: patches, "no more points", subpatches, 3×3 locations', () => {
    expect(b).toMatchObject({ patchStart: 100, patchEndWithoutNoMorePoints: 110, noMorePoints: 110, patchEnd: 111, subpatchStart: 111, subpatchEnd: 115, locationStart: 115, locationEnd: 124 });
    expect(pointTokenBounds({ firstId: 100, nPatches: 10, nSubpatches: 4, locations: false, noMorePointsClass: false })).toMatchObject({ noMorePoints: -1, patchEnd: 110, locationEnd: 114 });
  });

  it('come in order: patch → subpatch → location, then text or the next patch', () => {
    const text = range(0, 100);
    const after = [...text, ...range(b.locationEnd, b.locationEnd + 5)];
    expect(allowed([5, 6])).toEqual([...range(0, b.patchEnd), ...range(b.locationEnd, b.locationEnd + 5)]);
    expect(allowed([5, patch(3)])).toEqual(range(b.subpatchStart, b.subpatchEnd));
    expect(allowed([5, patch(3), sub(2)])).toEqual(range(b.locationStart, b.locationEnd));
    expect(allowed([5, patch(3), sub(2), loc(4)])).toEqual([...text, ...range(patch(3), b.patchEnd), ...after.slice(100)]);
    // "No more points" ends pointing for the rest of the answer.
    expect(allowed([5, b.noMorePoints, 7])).toEqual(after);
  });

  it('keep points sorted and unrepeated when the checkpoint asks', () => {
    // The same patch again: only later subpatches (a repeat of subpatch 2 is masked too).
    expect(allowed([patch(3), sub(2), loc(0), 9, patch(3)])).toEqual(range(sub(3), b.subpatchEnd));
    expect(allowed([patch(3), sub(2), loc(0), 9, patch(3)], { ...RULES, preventRepeats: false })).toEqual(range(sub(2), b.subpatchEnd));
    // After a point in the last subpatch, its patch cannot come again (it could only repeat that point).
    expect(allowed([patch(3), sub(3), loc(0), 9])).not.toContain(patch(3));
    expect(allowed([patch(3), sub(3), loc(0), 9])).toContain(patch(4));
    // Unsorted when the checkpoint does not ask: earlier patches stay allowed.
    expect(allowed([patch(3), sub(1), loc(0), 9], { preventRepeats: false, forcePatchSorted: false, forceSubpatchSorted: false })).toContain(patch(1));
  });
});

describe('MolmoPoint answers → points', () => {
  it('read the patch, the ViT patch of its pooling window and the 3×3 cell', () => {
    const pooling = Int32Array.from([0, 1, 2, 3, 10, 11, -1, -1]); // two patches of 4
    // 2 patches + "no more points": subpatches from <POINT_3>, locations from <POINT_7>. Patch 1,
    // subpatch 1, location 5; the lone <POINT_9> is no point.
    const text = 'Here: <POINT_1> <POINT_4> <POINT_12> 7 and junk <POINT_9> 2';
    expect(pointChoices(text, pooling, 4, true)).toEqual([{ vitPatch: 11, location: 5, object: 7 }]);
  });

  it("give pixels of the right image through each image's hi-res patch map; a global-view patch gives none", () => {
    const sizes: [number, number][] = [
      [640, 480],
      [300, 900],
    ];
    const plans = sizes.map(([w, h]) => planImage(w, h));
    const maps = [imagePatchMap(plans[0], 0), imagePatchMap(plans[1], plans[0].numCrops * 729)];
    // Image 1's hi-res patch at row 20, column 9 of its map; the pooling window holding it is made up.
    const m = maps[1];
    const vit = m.map[20 * m.w + 9];
    const pooling = Int32Array.from([5, 6, 7, 8, vit, vit + 1, vit + 27, vit + 28]); // patch 0: global view of image 0
    const nPatches = 2 + 1;
    const point = (p: number, s: number, l: number, n: number) => `<POINT_${p}><POINT_${nPatches + s}><POINT_${nPatches + 4 + l}>${n}`;
    const points = extractImagePoints(`${point(1, 0, 4, 1)} ${point(1, 0, 0, 2)} ${point(0, 1, 4, 3)}`, pooling, 4, maps, sizes, true);
    expect(points).toHaveLength(2);
    // Location 4 is the middle cell: (1 + 0.5)·0.33 = 0.495 of the patch along each axis.
    expect(points[0]).toEqual({ object: 1, image: 1, x: ((9 + 0.495) / m.w) * 300, y: ((20 + 0.495) / m.h) * 900 });
    expect(points[1].x).toBeCloseTo(((9 + 0.165) / m.w) * 300, 9);
    expect(points[1].y).toBeCloseTo(((20 + 0.165) / m.h) * 900, 9);
    // The hi-res map covers the resized image, whose patches all fall inside the plan's crops.
    expect(m.w * 14).toBe(plans[1].resized[1]);
    expect(m.h * 14).toBe(plans[1].resized[0]);
  });

  it('give a time and pixels in video frames: frame f holds ViT patches f·729 …', () => {
    const frame = planVideoFrame();
    expect(frame.pooledIdx.length / 9).toBe(81);
    const vit = 2 * 729 + 5 * 27 + 7; // frame 2, row 5, column 7
    const pooling = Int32Array.from({ length: 9 }, (_, i) => vit + (i % 3) + 27 * Math.floor(i / 3));
    const text = '<POINT_0><POINT_2><POINT_11>4'; // 1 patch + "no more points" → subpatches from 2, locations from 11
    expect(extractVideoPoints(text, pooling, 9, [0, 0.5, 1], 27, [1280, 720], true)).toEqual([{ object: 4, time: 1, x: ((7 + 0.165) / 27) * 1280, y: ((5 + 0.165) / 27) * 720 }]);
  });
});
