// Scores a model's answer about a generated scene against the generator's ground truth: where the
// points the app's parser reads from the answer land, compared with the true shape centres. Used by
// the demo model's evaluation, end-to-end tests and benchmark. Platform-free.
import { parseAnswer, type ParsedPoint } from '../molmo2/answer.ts';
import { groundTruth } from './scene-answers.ts';
import { frameTimeS, type Scene, type ScenePoint, type SceneTarget } from './scenes.ts';

/** Pointing: each true centre matched to at most one answered point within `radius` px (closest pairs first). */
export interface PointScore {
  truth: number;
  answered: number;
  /** True centres with an answered point within the radius. */
  hits: number;
  /** Distance of each hit, px. */
  errorsPx: number[];
  /** The count the answer states ("shows a total of N"), when it states one. */
  statedCount?: number;
}

/** The distance that counts as a hit: `fraction` of the frame width (3% unless told). */
export const hitRadius = (scene: Scene, fraction = 0.03): number => fraction * scene.width;

export function scorePoints(scene: Scene, target: SceneTarget, answer: string, radius = hitRadius(scene)): PointScore {
  const parsed = parseAnswer(answer, [{ width: scene.width, height: scene.height }], { mode: 'images' });
  const truth = groundTruth(scene, target);
  const { hits, errors } = match(truth, parsed.points, radius);
  return { truth: truth.length, answered: parsed.points.length, hits, errorsPx: errors, statedCount: parsed.count };
}

/** The count an answer gives: the stated number, else its points; "There are none." is 0. */
export function answeredCount(score: PointScore): number {
  return score.statedCount ?? score.answered;
}

/** Tracking: one entry per frame of the clip, the answered point's distance from the target (null: none on that frame). */
export interface TrackScore {
  frames: number;
  errorsPx: (number | null)[];
}

export function scoreTrack(scene: Scene, target: SceneTarget, answer: string): TrackScore {
  if (scene.fps === undefined) throw new Error('a track is scored on a clip');
  const parsed = parseAnswer(answer, [{ width: scene.width, height: scene.height }], { mode: 'video', fps: scene.fps });
  return scoreTrackPoints(scene, target, parsed.points.flatMap((p) => (p.kind === 'video' ? [p] : [])));
}

/** A point of a track at a time of the clip: parsed from an answer, or as the app drew it. */
export interface TimedPoint extends ScenePoint {
  /** Seconds from the clip's start. */
  clipTimeS: number;
}

/** Tracking, from points already read (e.g. what the overlay drew, in the clip's pixels). */
export function scoreTrackPoints(scene: Scene, target: SceneTarget, points: TimedPoint[]): TrackScore {
  if (scene.fps === undefined) throw new Error('a track is scored on a clip');
  const truth = groundTruth(scene, target);
  const errorsPx = Array.from({ length: scene.frames }, (_, frame) => {
    const t = frameTimeS(scene, frame);
    // Timestamps are written with one decimal: a point belongs to the frame whose time rounds to it.
    const onFrame = points.filter((p) => Math.abs(p.clipTimeS - t) < 0.05 + 1e-9);
    const centre = truth.find((p) => p.frame === frame);
    if (!centre || onFrame.length === 0) return null;
    return Math.min(...onFrame.map((p) => distance(p, centre)));
  });
  return { frames: scene.frames, errorsPx };
}

function distance(a: ScenePoint, b: ScenePoint): number {
  return Math.hypot(a.x - b.x, a.y - b.y);
}

function match(truth: ScenePoint[], points: ParsedPoint[], radius: number): { hits: number; errors: number[] } {
  const pairs: { t: number; p: number; d: number }[] = [];
  truth.forEach((c, t) => points.forEach((p, i) => pairs.push({ t, p: i, d: distance(c, p) })));
  pairs.sort((a, b) => a.d - b.d);
  const usedTruth = new Set<number>();
  const usedPoint = new Set<number>();
  const errors: number[] = [];
  for (const { t, p, d } of pairs) {
    if (d > radius) break;
    if (usedTruth.has(t) || usedPoint.has(p)) continue;
    usedTruth.add(t);
    usedPoint.add(p);
    errors.push(d);
  }
  return { hits: errors.length, errors };
}
