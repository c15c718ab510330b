// Corrections by hand to a result's points: move, delete or add one point on a frame the run sampled.
// Each returns a new result whose `points` are the corrected ones (so every export uses them) and whose
// `original` keeps the model's own points and count (taken at the first edit). Platform-free.
//
// Points are added only on sampled frames: the overlay and the exports place every point on a sampled
// time (a point between them would be moved to the nearest one), and the model saw only those frames.
import type { ResultJson, ResultPoint } from './result.ts';

export type EditOutcome = { ok: true; result: ResultJson; trackId: number } | { ok: false; message: string };

/** Which of the run's sampled frames decoded frame `frame` is (its index in `video.sampledFrames`), or -1. */
export function sampleAt(result: ResultJson, frame: number): number {
  return frame < 0 ? -1 : result.video.sampledFrames.indexOf(frame);
}

/** Index in `points` of object `trackId`'s point on decoded frame `frame`, or -1. */
export function pointIndexAt(result: ResultJson, trackId: number, frame: number): number {
  return frame < 0 ? -1 : result.points.findIndex((p) => p.trackId === trackId && p.frame === frame);
}

/** The id a new object gets: one past every id the model or the user gave. */
export function nextTrackId(result: ResultJson): number {
  const ids = [...result.points, ...(result.original?.points ?? [])].map((p) => p.trackId);
  return ids.length ? Math.max(...ids) + 1 : 1;
}

/** Moves object `trackId`'s point on `frame` to `at` (frame pixels, kept inside the frame). */
export function movePoint(result: ResultJson, trackId: number, frame: number, at: { x: number; y: number }): EditOutcome {
  const i = pointIndexAt(result, trackId, frame);
  if (i < 0) return missing(trackId, frame);
  const points = result.points.map((p, k) => (k === i ? { ...p, ...place(result, at) } : p));
  // Moving a point does not change what was found, so a stated count stays.
  return { ok: true, result: corrected(result, points, result.count), trackId };
}

/** Deletes object `trackId`'s point on `frame`. */
export function deletePoint(result: ResultJson, trackId: number, frame: number): EditOutcome {
  const i = pointIndexAt(result, trackId, frame);
  if (i < 0) return missing(trackId, frame);
  return { ok: true, result: corrected(result, result.points.filter((_, k) => k !== i), null), trackId };
}

/**
 * Adds a point at `at` on `frame` (which must be a sampled frame) to object `track`, or to a new object.
 * It takes the object's label and tag (a new object those of the answer's first point).
 */
export function addPoint(result: ResultJson, frame: number, track: number | 'new', at: { x: number; y: number }): EditOutcome {
  const k = sampleAt(result, frame);
  if (k < 0) return { ok: false, message: `Frame ${frame + 1} was not sent to the model: add points on one of the run's ${result.video.sampledFrames.length} sampled frames.` };
  const trackId = track === 'new' ? nextTrackId(result) : track;
  if (pointIndexAt(result, trackId, frame) >= 0) return { ok: false, message: `Object #${trackId} already has a point on frame ${frame + 1}: drag it instead.` };
  const like = result.points.find((p) => p.trackId === trackId) ?? result.points[0] ?? result.original?.points[0];
  const timeS = result.video.sampledTimesS[k];
  const common = {
    trackId,
    label: like?.label ?? null,
    tag: like?.tag ?? (result.query.task === 'track' ? ('tracks' as const) : ('points' as const)),
    timeS,
    frame,
    ...place(result, at),
  };
  const point: ResultPoint =
    result.query.mode === 'images'
      ? { kind: 'image', image: k + 1, ...common }
      : // The clip time the model would have written for this frame.
        { kind: 'video', clipTimeS: Math.round((timeS - (result.query.clipStartS ?? 0)) * 1e6) / 1e6, ...common };
  // Kept in time order, after the points already at this time with a lower id.
  let i = result.points.findIndex((p) => p.timeS > timeS || (p.timeS === timeS && p.trackId > trackId));
  if (i < 0) i = result.points.length;
  const points = [...result.points.slice(0, i), point, ...result.points.slice(i)];
  return { ok: true, result: corrected(result, points, null), trackId };
}

/** The model's answer again: the corrected points are dropped (the result is no longer edited). */
export function revertEdits(result: ResultJson): ResultJson {
  if (!result.original) return result;
  const { original, status: _, ...rest } = result;
  return { ...rest, points: original.points, count: original.count };
}

/**
 * The corrected result. Adding or deleting a point changes what was found, so its count becomes that
 * of the corrected points (null: the distinct ids); the model's stated count stays in `original`.
 */
function corrected(result: ResultJson, points: ResultPoint[], count: number | null): ResultJson {
  const original = result.original ?? { points: result.points, count: result.count };
  return { ...result, status: 'edited', points, count, original };
}

function place(result: ResultJson, at: { x: number; y: number }) {
  const { width, height } = result.video;
  const xPx = Math.min(width, Math.max(0, at.x));
  const yPx = Math.min(height, Math.max(0, at.y));
  return { xPx, yPx, xNorm: xPx / width, yNorm: yPx / height };
}

function missing(trackId: number, frame: number): EditOutcome {
  return { ok: false, message: `Object #${trackId} has no point on frame ${frame + 1}.` };
}
