// Places parsed video points on the video's timeline and groups them into tracks. Platform-free.
//
// Time → frame rule (the Ai2 demo's, see docs/molmo2-answers.md): the model writes each timestamp as
// round(t, 1) of a sampled time t, so a key maps to the nearest sampled time (ties → the earlier one),
// and that time maps to the frame presented then: the last decoded frame whose timestamp is
// ≤ t + 1e-6 (the epsilon absorbs float noise of timestamps computed as i / fps).

import type { VideoPoint } from './answer.ts';

export interface Timeline {
  /** Times in seconds of the frames shown to the model, ascending. */
  sampledTimes: number[];
  /** Presentation timestamps in seconds of the decoded video frames, ascending. */
  frameTimestamps: number[];
}

export interface TimedPoint extends VideoPoint {
  /** The sampled time the point belongs to, in seconds. */
  time: number;
  /** Index into `sampledTimes` (-1 when there are none). */
  sampleIndex: number;
  /** 0-based index of the decoded frame presented at `time` (-1 when there are no frames). */
  frameIndex: number;
}

export interface TrackStep {
  time: number;
  sampleIndex: number;
  frameIndex: number;
  /** null: the object was not reported at this sampled time (occluded, absent or missed). */
  point: TimedPoint | null;
}

export interface Track {
  id: number;
  label?: string;
  /** The object's points, in time order. */
  points: TimedPoint[];
  /** One step per sampled time from the first to the last point, gaps as `point: null`. */
  steps: TrackStep[];
}

/** A model timestamp rounds a sampled time to 0.1 s, so it lies within 0.05 s of it. */
const KEY_TOLERANCE = 0.05 + 1e-6;
const FRAME_EPSILON = 1e-6;

/** Index of the sampled time nearest to `t` (ties → earlier); -1 when there are none. */
export function nearestSampleIndex(t: number, sampledTimes: number[]): number {
  let best = -1;
  for (let i = 0; i < sampledTimes.length; i++) {
    if (best < 0 || Math.abs(sampledTimes[i] - t) < Math.abs(sampledTimes[best] - t)) best = i;
  }
  return best;
}

/** 0-based index of the frame presented at time `t`: the last with timestamp ≤ t + 1e-6 (0 before the first; -1 without frames). */
export function frameIndexAt(t: number, frameTimestamps: number[]): number {
  if (frameTimestamps.length === 0) return -1;
  let lo = 0;
  let hi = frameTimestamps.length - 1;
  if (frameTimestamps[0] > t + FRAME_EPSILON) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (frameTimestamps[mid] <= t + FRAME_EPSILON) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Maps each point's timestamp key to a sampled time and a frame. */
export function placePoints(points: VideoPoint[], timeline: Timeline): { points: TimedPoint[]; warnings: string[] } {
  const warnings: string[] = [];
  if (timeline.sampledTimes.length === 0 && points.length > 0) warnings.push('no sampled times given: points keep their own timestamps');
  const placed = points.map((p) => {
    const sampleIndex = nearestSampleIndex(p.clipTimeS, timeline.sampledTimes);
    const time = sampleIndex < 0 ? p.clipTimeS : timeline.sampledTimes[sampleIndex];
    if (sampleIndex >= 0 && Math.abs(time - p.clipTimeS) > KEY_TOLERANCE) {
      warnings.push(`timestamp ${p.clipTimeS} s is not one of the sampled times; placed at ${time} s`);
    }
    return { ...p, time, sampleIndex, frameIndex: frameIndexAt(time, timeline.frameTimestamps) };
  });
  return { points: placed, warnings: [...new Set(warnings)] };
}

/**
 * Groups points into tracks by object id (ascending ids), each in time order, with a step for every
 * sampled time between the track's first and last point. Two points of one id at one sampled time
 * keep the first, as the reference parser does.
 */
export function groupTracks(points: VideoPoint[], timeline: Timeline): { tracks: Track[]; warnings: string[] } {
  const placed = placePoints(points, timeline);
  const warnings = [...placed.warnings];
  const byId = new Map<number, TimedPoint[]>();
  for (const p of placed.points) {
    const list = byId.get(p.id) ?? [];
    if (list.some((q) => q.time === p.time)) {
      warnings.push(`object ${p.id} has two points at ${p.time} s; kept the first`);
      continue;
    }
    list.push(p);
    byId.set(p.id, list);
  }
  const tracks = [...byId.entries()]
    .sort(([a], [b]) => a - b)
    .map(([id, list]): Track => {
      const sorted = [...list].sort((a, b) => a.time - b.time);
      const label = sorted.find((p) => p.label !== undefined)?.label;
      const track: Track = { id, points: sorted, steps: stepsOf(sorted, timeline) };
      return label === undefined ? track : { ...track, label };
    });
  return { tracks, warnings };
}

function stepsOf(points: TimedPoint[], timeline: Timeline): TrackStep[] {
  if (points.length === 0) return [];
  // Without sampled times the only known times are the points' own.
  if (timeline.sampledTimes.length === 0) return points.map((p) => ({ time: p.time, sampleIndex: -1, frameIndex: p.frameIndex, point: p }));
  const first = points[0].sampleIndex;
  const last = points[points.length - 1].sampleIndex;
  const bySample = new Map(points.map((p) => [p.sampleIndex, p]));
  const steps: TrackStep[] = [];
  for (let i = first; i <= last; i++) {
    const time = timeline.sampledTimes[i];
    steps.push({ time, sampleIndex: i, frameIndex: frameIndexAt(time, timeline.frameTimestamps), point: bySample.get(i) ?? null });
  }
  return steps;
}
