import { describe, expect, it } from 'vitest';
import { buildResult } from '../molmo2/export/result.ts';
import { trackingInput } from '../molmo2/export/test-fixture.ts';
import { familyColor, markersAt, markerText, overlayTracks, runCount, trackStyle, FAMILY_HUES, MARKER_SHAPES, TRACK_COLORS } from './overlay-model.ts';

// 30 fps, 90 frames; sampled at 0, 0.5, …, 2.5, 2.9667. Object 1 at 0, 1, 2, 2.9667 (gaps at 0.5 and
// 1.5, 2.5); object 2 at 1 and 2 only.
const result = buildResult(trackingInput());
const frameTimes = Array.from({ length: 90 }, (_, i) => i / 30);
const tracks = overlayTracks('r1', result, frameTimes);
const at = (frame: number, opts = { trail: 0, interpolate: false }) => markersAt(tracks, frame, frameTimes[frame], opts);
const pos = (frame: number, id: number, opts?: { trail: number; interpolate: boolean }) => {
  const m = at(frame, opts).find((k) => k.trackId === id);
  return m && [Math.round(m.x), Math.round(m.y), m.exact];
};

describe('overlay model', () => {
  it('groups the points into tracks with gaps at sampled times without a point', () => {
    expect(tracks.map((t) => t.id)).toEqual([1, 2]);
    expect(tracks[0].steps.map((s) => [s.time, s.frame, s.point !== null])).toEqual([
      [0, 0, true],
      [0.5, 15, false],
      [1, 30, true],
      [1.5, 45, false],
      [2, 60, true],
      [2.5, 75, false],
      [2.9667, 89, true],
    ]);
    expect(tracks[1].endFrame).toBe(75);
  });

  it('shows exact model points on sampled frames, holds them until the next sampled time, and hides gaps', () => {
    expect(pos(0, 1)).toEqual([128, 36, true]);
    expect(pos(10, 1)).toEqual([128, 36, false]); // held: 0.333 s is before the 0.5 s sample
    expect(pos(15, 1)).toBeUndefined(); // 0.5 s: object 1 not reported
    expect(pos(29, 1)).toBeUndefined();
    expect(pos(30, 1)).toEqual([160, 54, true]);
    expect(pos(29, 2)).toBeUndefined(); // before the track starts
    expect(pos(60, 2)).toEqual([416, 342, true]);
    expect(pos(74, 2)).toEqual([416, 342, false]);
    expect(pos(75, 2)).toBeUndefined(); // held only until the next sampled time
    expect(pos(89, 1)).toEqual([224, 90, true]);
  });

  it('interpolates between two sampled points, never across a gap', () => {
    const interp = { trail: 0, interpolate: true };
    // Object 2: (384, 324) at 1 s → (416, 342) at 2 s; no sample in between for it… but 1.5 s is a sampled
    // time where it is missing, so it holds, then hides.
    expect(pos(40, 2, interp)).toEqual([384, 324, false]);
    expect(pos(45, 2, interp)).toBeUndefined();
    // A track without gaps interpolates.
    const dense = buildResult(trackingInput({ rawText: '<tracks coords="0.0 1 100 100;0.5 1 200 300">x</tracks>' }));
    const t = overlayTracks('r2', dense, frameTimes);
    const m = markersAt(t, 6, frameTimes[6], interp)[0]; // 0.2 s = 40% of the way
    expect([m.x, m.y].map((v) => Math.round(v * 1000) / 1000)).toEqual([89.6, 64.8]);
  });

  it('draws a trail of the last positions, with a dashed segment across a gap', () => {
    const m = at(60, { trail: 3, interpolate: false }).find((k) => k.trackId === 1)!;
    // Steps 1 s (point), 1.5 s (gap), 2 s (point): one dashed bridge.
    expect(m.trail).toEqual([{ points: [{ x: 160, y: 54 }, { x: 192, y: 72 }], dashed: true }]);
    const two = at(60, { trail: 5, interpolate: false }).find((k) => k.trackId === 2)!;
    expect(two.trail).toEqual([{ points: [{ x: 384, y: 324 }, { x: 416, y: 342 }], dashed: true }]);
    expect(at(60, { trail: 1, interpolate: false })[0].trail).toEqual([]);
  });

  it('in images mode shows each point on its own frame only', () => {
    const r = buildResult(
      trackingInput({
        query: { text: 'Point to the cups', task: 'point', mode: 'images' },
        video: { ...trackingInput().video, sampledTimesS: [0.5, 2] },
        rawText: '<points coords="1 1 500 500 2 100 100;2 3 250 250">cups</points>',
      }),
    );
    const t = overlayTracks('r3', r, frameTimes);
    expect(markersAt(t, 15, 0.5, { trail: 4, interpolate: true }).map((m) => m.trackId)).toEqual([1, 2]);
    expect(markersAt(t, 16, 16 / 30, { trail: 4, interpolate: true })).toEqual([]);
    expect(markersAt(t, 60, 2, { trail: 4, interpolate: true }).map((m) => [m.trackId, m.x, m.y])).toEqual([[3, 160, 90]]);
    expect(runCount(r)).toBe(3);
  });

  it('gives every id of 1–60 a distinct colour and shape pair', () => {
    const pairs = new Set(Array.from({ length: 60 }, (_, i) => JSON.stringify(trackStyle(i + 1))));
    expect(pairs.size).toBe(60);
    expect(MARKER_SHAPES.length * TRACK_COLORS.length).toBeGreaterThanOrEqual(60);
  });

  it('gives runs drawn together colour families that share no colour, and shades within a family', () => {
    const family = (f: number) => Array.from({ length: 6 }, (_, i) => familyColor(f, i + 1));
    const all = FAMILY_HUES.flatMap((_, f) => family(f));
    expect(new Set(all).size).toBe(all.length);
    for (const c of all) expect(c).toMatch(/^#[0-9a-f]{6}$/);
    // Family 0 is a blue: its shades keep blue the strongest channel.
    for (const c of family(0)) expect(parseInt(c.slice(5, 7), 16)).toBeGreaterThan(parseInt(c.slice(1, 3), 16));
    // Families wrap after the last hue; ids wrap after the last shade.
    expect(familyColor(FAMILY_HUES.length, 1)).toBe(familyColor(0, 1));
  });

  it('labels a marker with its run when it has one', () => {
    expect(markerText({ trackId: 2, label: 'cups' })).toBe('#2 cups');
    expect(markerText({ runTag: 'Run 3', trackId: 2, label: 'cups' })).toBe('Run 3 #2 cups');
    expect(markerText({ runTag: 'Run 3', trackId: 1 })).toBe('Run 3 #1');
  });
});
