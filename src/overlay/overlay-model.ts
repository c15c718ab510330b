// What the overlay shows at a frame: each track's marker (held between sampled times, optionally
// interpolated, hidden in gaps), its trail and its style. Pure data, shared by the page's Konva overlay
// and the annotate worker, so both draw exactly the same thing.
import type { ResultJson } from '../molmo2/export/result.ts';
import type { VideoPoint } from '../molmo2/answer.ts';
import { frameIndexAt, groupTracks } from '../molmo2/tracks.ts';

export type MarkerShape = 'circle' | 'square' | 'triangle' | 'diamond' | 'star' | 'cross';

/**
 * Neighbouring ids differ in colour and in shape, and ids 0–59 all get different pairs (the shape
 * index (5a + b) mod 6 of id 10a + b is a bijection over a), so a track never relies on colour alone.
 */
export const MARKER_SHAPES: MarkerShape[] = ['circle', 'square', 'triangle', 'diamond', 'star', 'cross'];
export const TRACK_COLORS = ['#ff4d6d', '#3ddc97', '#4cc9f0', '#ffd166', '#c77dff', '#ff9f1c', '#06d6a0', '#f15bb5', '#90be6d', '#00bbf9'];

export function trackStyle(id: number): { color: string; shape: MarkerShape } {
  const n = Math.abs(Math.trunc(id));
  const b = n % TRACK_COLORS.length;
  const a = Math.floor(n / TRACK_COLORS.length);
  return { color: TRACK_COLORS[b], shape: MARKER_SHAPES[(5 * a + b) % MARKER_SHAPES.length] };
}

/**
 * Colour families for several runs drawn together: one hue per run (well apart on the wheel), its
 * tracks in shades of that hue. A run drawn alone keeps the full `TRACK_COLORS` palette instead.
 */
export const FAMILY_HUES = [205, 30, 125, 285, 55, 330];
const FAMILY_LIGHTNESS = [55, 72, 40, 64, 47, 80];

/** Track `id`'s colour in colour family `family` (0, 1, … for the runs drawn together). */
export function familyColor(family: number, id: number): string {
  const n = Math.abs(Math.trunc(id));
  const hue = FAMILY_HUES[Math.abs(Math.trunc(family)) % FAMILY_HUES.length];
  return hslHex(hue, 0.85, FAMILY_LIGHTNESS[n % FAMILY_LIGHTNESS.length] / 100);
}

// '#rrggbb': the overlay, the swimlanes and the tests compare colours as hex.
function hslHex(h: number, s: number, l: number): string {
  const a = s * Math.min(l, 1 - l);
  const f = (k: number) => {
    const m = (k + h / 30) % 12;
    const v = l - a * Math.max(-1, Math.min(m - 3, 9 - m, 1));
    return Math.round(v * 255).toString(16).padStart(2, '0');
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}

/** Marker and lane text: the run's tag when several runs may be on screen, so ids stay unique there. */
export function markerText(m: { runTag?: string; trackId: number; label?: string }): string {
  return `${m.runTag ? `${m.runTag} ` : ''}#${m.trackId}${m.label ? ` ${m.label}` : ''}`;
}

export interface OverlayStep {
  /** Video time (s) of the sampled frame. */
  time: number;
  frame: number;
  /** Frame pixels; null = the model reported no point here (a gap). */
  point: { x: number; y: number } | null;
}

export interface OverlayTrack {
  runId: string;
  /** Short name of the run ("Run 2"), shown before the id; absent in a one-run export. */
  runTag?: string;
  id: number;
  label?: string;
  color: string;
  shape: MarkerShape;
  /** 'images': each point belongs to one frame only; 'video': points are held between sampled times. */
  mode: 'images' | 'video';
  steps: OverlayStep[];
  /** First frame after the track: that of the next sampled time after its last step (held until then). */
  endFrame: number;
}

/** The run's points as tracks on the video's frames. */
export function overlayTracks(runId: string, result: ResultJson, frameTimes: number[]): OverlayTrack[] {
  const sampled = result.video.sampledTimesS;
  if (result.query.mode === 'images') {
    const byId = new Map<number, OverlayTrack>();
    for (const p of result.points) {
      const t = byId.get(p.trackId) ?? { runId, id: p.trackId, ...label(p.label), ...trackStyle(p.trackId), mode: 'images' as const, steps: [], endFrame: 0 };
      t.steps.push({ time: p.timeS, frame: p.frame, point: { x: p.xPx, y: p.yPx } });
      t.endFrame = Math.max(t.endFrame, p.frame + 1);
      byId.set(p.trackId, t);
    }
    return [...byId.values()].sort((a, b) => a.id - b.id);
  }
  // Points already sit on sampled (video) times, so grouping them against those times, with the whole
  // video as the clip, is exact.
  const onVideo = result.points.map((p): VideoPoint => ({ kind: 'video', clipTimeS: p.timeS, id: p.trackId, x: p.xPx, y: p.yPx, xNorm: p.xNorm, yNorm: p.yNorm, tag: p.tag, ...label(p.label) }));
  const { tracks } = groupTracks(onVideo, { sampledTimes: sampled, frameTimestamps: frameTimes });
  return tracks.map((t) => {
    const steps = t.steps.map((s) => ({ time: s.time, frame: s.frameIndex, point: s.point ? { x: s.point.x, y: s.point.y } : null }));
    const last = steps[steps.length - 1];
    const next = sampled.find((s) => s > last.time + 1e-9);
    const endFrame = Math.max(last.frame + 1, next === undefined ? 0 : frameIndexAt(next, frameTimes));
    return { runId, id: t.id, ...label(t.label), ...trackStyle(t.id), mode: 'video', steps, endFrame };
  });
}

function label(l: string | null | undefined): { label?: string } {
  return l ? { label: l } : {};
}

export interface TrailSegment {
  points: { x: number; y: number }[];
  /** True for a segment that bridges a gap (the object was not reported in between). */
  dashed: boolean;
}

export interface Marker {
  runId: string;
  runTag?: string;
  trackId: number;
  label?: string;
  color: string;
  shape: MarkerShape;
  x: number;
  y: number;
  /** True on a sampled frame with a model point; false when held or interpolated. */
  exact: boolean;
  trail: TrailSegment[];
}

export interface MarkerOptions {
  /** Positions of the trail, the current one included (0 or 1 = no trail). */
  trail: number;
  /** Move linearly between two sampled points instead of holding the earlier one. */
  interpolate: boolean;
}

/** The markers to draw on the frame with this index, presented at `time` seconds. */
export function markersAt(tracks: OverlayTrack[], frame: number, time: number, opts: MarkerOptions): Marker[] {
  const out: Marker[] = [];
  for (const t of tracks) {
    const m = t.mode === 'images' ? imageMarker(t, frame) : videoMarker(t, frame, time, opts);
    if (m) out.push(m);
  }
  return out;
}

function base(t: OverlayTrack) {
  return { runId: t.runId, trackId: t.id, color: t.color, shape: t.shape, ...(t.label ? { label: t.label } : {}), ...(t.runTag ? { runTag: t.runTag } : {}) };
}

function imageMarker(t: OverlayTrack, frame: number): Marker | undefined {
  const s = t.steps.find((step) => step.frame === frame && step.point);
  return s?.point ? { ...base(t), x: s.point.x, y: s.point.y, exact: true, trail: [] } : undefined;
}

// Steps are reached by frame (the frame presented at a sampled time shows that sample's point);
// interpolation uses time.
function videoMarker(t: OverlayTrack, frame: number, time: number, opts: MarkerOptions): Marker | undefined {
  const steps = t.steps;
  if (steps.length === 0 || frame < steps[0].frame || frame >= t.endFrame) return undefined;
  let i = 0;
  while (i + 1 < steps.length && steps[i + 1].frame <= frame) i++;
  const step = steps[i];
  if (!step.point) return undefined; // a gap: not drawn
  let { x, y } = step.point;
  const exact = frame === step.frame;
  const next = steps[i + 1];
  if (opts.interpolate && !exact && next?.point && next.time > step.time) {
    const f = Math.min(1, Math.max(0, (time - step.time) / (next.time - step.time)));
    x += (next.point.x - x) * f;
    y += (next.point.y - y) * f;
  }
  return { ...base(t), x, y, exact, trail: trailOf(steps, i, { x, y }, opts.trail) };
}

/** The last `n` positions up to step `i` (plus the current position), split at gaps into solid and dashed segments. */
function trailOf(steps: OverlayStep[], i: number, current: { x: number; y: number }, n: number): TrailSegment[] {
  if (n <= 1) return [];
  const from = Math.max(0, i - (n - 1));
  const segments: TrailSegment[] = [];
  let solid: { x: number; y: number }[] = [];
  let lastSeen: { x: number; y: number } | undefined;
  let gap = false;
  const push = (p: { x: number; y: number }) => {
    if (gap && lastSeen) {
      if (solid.length > 1) segments.push({ points: solid, dashed: false });
      segments.push({ points: [lastSeen, p], dashed: true });
      solid = [];
    }
    gap = false;
    solid.push(p);
    lastSeen = p;
  };
  for (let k = from; k <= i; k++) {
    const p = steps[k].point;
    if (p) push(p);
    else gap = true;
  }
  const tail = solid[solid.length - 1];
  if (!tail || tail.x !== current.x || tail.y !== current.y) push(current);
  if (solid.length > 1) segments.push({ points: solid, dashed: false });
  return segments;
}

/** How many objects a run found: its counting sentence when it has one, else its distinct ids. */
export function runCount(result: ResultJson): number {
  return result.count ?? new Set(result.points.map((p) => p.trackId)).size;
}

/** Marker radius in frame pixels: about 1.2% of the frame's longer side, as peers size their dots. */
export function markerRadius(width: number, height: number): number {
  return Math.max(4, Math.round(Math.max(width, height) * 0.012));
}

/**
 * Outline of a marker centred on (0, 0) as [x0, y0, x1, y1, …] (a closed polygon), or null for a
 * circle. Shared by the Konva overlay and the burned-in export so both draw the same shapes.
 */
export function shapeOutline(shape: MarkerShape, r: number): number[] | null {
  const polygon = (n: number, radii: number[], phase: number) =>
    Array.from({ length: n }, (_, k) => {
      const a = phase + (2 * Math.PI * k) / n;
      const rr = radii[k % radii.length];
      return [rr * Math.cos(a), rr * Math.sin(a)];
    }).flat();
  switch (shape) {
    case 'circle':
      return null;
    case 'square':
      return polygon(4, [r * 1.25], Math.PI / 4);
    case 'diamond':
      return polygon(4, [r * 1.3], 0);
    case 'triangle':
      return polygon(3, [r * 1.35], -Math.PI / 2);
    case 'star':
      return polygon(10, [r * 1.45, r * 0.65], -Math.PI / 2);
    case 'cross': {
      const a = r * 1.2;
      const b = r * 0.42;
      return [-b, -a, b, -a, b, -b, a, -b, a, b, b, b, b, a, -b, a, -b, b, -a, b, -a, -b, -b, -b];
    }
  }
}
