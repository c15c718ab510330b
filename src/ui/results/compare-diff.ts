// How two runs of one video differ, object by object: their tracks are paired, and each pair lists
// the frames only one run has a point on and how far apart the two points are on the frames both
// have. Platform-free, so it is unit-tested.
//
// Pairing: the model numbers objects afresh in every answer (a re-run may call the left cup #2 and
// the right one #1), so ids alone would pair the wrong objects. Tracks are paired by position
// instead: for every pair of tracks that share frames, the mean distance over those frames; the
// closest pairs are taken first (greedy: each track in at most one pair), and only while that mean
// is within `maxMeanPx`, so two different objects are not paired just because nothing else is left.
// Tracks with no frame in common cannot be compared by position; those left over are paired when
// they have the same id and label (e.g. the same question about different frames).
import type { ResultPoint } from '../../molmo2/export/result.ts';

/** The fields of a result point the comparison reads. */
export type DiffPoint = Pick<ResultPoint, 'trackId' | 'label' | 'timeS' | 'frame' | 'xPx' | 'yPx'>;

/** Where a point is: its frame index (1-based in text), or its time when the frame is unknown. */
export interface DiffPlace {
  frame: number;
  timeS: number;
}

export interface DiffTrack {
  trackId: number;
  label: string | null;
  points: number;
}

export interface TrackPair {
  a: DiffTrack;
  b: DiffTrack;
  /** 'position': close at shared frames; 'id': same id and label, no frame in common. */
  matchedBy: 'position' | 'id';
  /** Frames both tracks have a point on. */
  shared: number;
  /** Distances in frame pixels over the shared frames; null when there are none. */
  meanPx: number | null;
  maxPx: number | null;
  /** Where the largest distance is. */
  maxAt: DiffPlace | null;
  /** Frames only one of the two tracks has a point on, in time order. */
  onlyA: DiffPlace[];
  onlyB: DiffPlace[];
}

export interface RunDiff {
  pairs: TrackPair[];
  /** Tracks of one run with no partner in the other. */
  onlyA: DiffTrack[];
  onlyB: DiffTrack[];
}

export interface DiffOptions {
  /** Largest mean distance (frame pixels) at which two tracks still count as the same object. */
  maxMeanPx: number;
}

/** A tenth of the frame's diagonal: far enough for a point placed a little differently, not for another object. */
export function defaultMaxMeanPx(width: number, height: number): number {
  return Math.hypot(width, height) / 10;
}

interface Track {
  info: DiffTrack;
  /** The track's first point on each frame, by place key. */
  at: Map<string, { place: DiffPlace; x: number; y: number }>;
}

// Frames identify a place exactly; a time is used only when the frame is unknown (-1).
const placeKey = (p: DiffPoint) => (p.frame >= 0 ? `f${p.frame}` : `t${Math.round(p.timeS * 1000)}`);

function tracksOf(points: DiffPoint[]): Track[] {
  const byId = new Map<number, Track>();
  for (const p of points) {
    let t = byId.get(p.trackId);
    if (!t) byId.set(p.trackId, (t = { info: { trackId: p.trackId, label: p.label, points: 0 }, at: new Map() }));
    t.info.points++;
    const key = placeKey(p);
    if (!t.at.has(key)) t.at.set(key, { place: { frame: p.frame, timeS: p.timeS }, x: p.xPx, y: p.yPx });
  }
  return [...byId.values()].sort((x, y) => x.info.trackId - y.info.trackId);
}

function pairOf(a: Track, b: Track, matchedBy: TrackPair['matchedBy']): TrackPair {
  let sum = 0;
  let max: number | null = null;
  let maxAt: DiffPlace | null = null;
  const onlyA: DiffPlace[] = [];
  for (const [key, pa] of a.at) {
    const pb = b.at.get(key);
    if (!pb) {
      onlyA.push(pa.place);
      continue;
    }
    const d = Math.hypot(pa.x - pb.x, pa.y - pb.y);
    sum += d;
    if (max === null || d > max) [max, maxAt] = [d, pa.place];
  }
  const onlyB = [...b.at].filter(([key]) => !a.at.has(key)).map(([, pb]) => pb.place);
  const shared = a.at.size - onlyA.length;
  const byTime = (x: DiffPlace, y: DiffPlace) => x.timeS - y.timeS || x.frame - y.frame;
  return { a: a.info, b: b.info, matchedBy, shared, meanPx: shared ? sum / shared : null, maxPx: max, maxAt, onlyA: onlyA.sort(byTime), onlyB: onlyB.sort(byTime) };
}

/** Pairs the tracks of run A's points with those of run B's and lists how each pair differs. */
export function diffRuns(pointsA: DiffPoint[], pointsB: DiffPoint[], opts: DiffOptions): RunDiff {
  const tracksA = tracksOf(pointsA);
  const tracksB = tracksOf(pointsB);
  const candidates = tracksA
    .flatMap((a) => tracksB.map((b) => pairOf(a, b, 'position')))
    .filter((p) => p.meanPx !== null && p.meanPx <= opts.maxMeanPx)
    // Closest first; on a tie, the pair with the same id, then the lower ids, so the result is stable.
    .sort((x, y) => x.meanPx! - y.meanPx! || Number(x.a.trackId !== x.b.trackId) - Number(y.a.trackId !== y.b.trackId) || x.a.trackId - y.a.trackId || x.b.trackId - y.b.trackId);
  const pairs: TrackPair[] = [];
  const usedA = new Set<number>();
  const usedB = new Set<number>();
  const take = (p: TrackPair) => {
    pairs.push(p);
    usedA.add(p.a.trackId);
    usedB.add(p.b.trackId);
  };
  for (const p of candidates) if (!usedA.has(p.a.trackId) && !usedB.has(p.b.trackId)) take(p);
  for (const a of tracksA) {
    if (usedA.has(a.info.trackId)) continue;
    const b = tracksB.find((t) => !usedB.has(t.info.trackId) && t.info.trackId === a.info.trackId && t.info.label === a.info.label);
    if (b && [...a.at.keys()].every((key) => !b.at.has(key))) take(pairOf(a, b, 'id'));
  }
  pairs.sort((x, y) => x.a.trackId - y.a.trackId);
  return {
    pairs,
    onlyA: tracksA.filter((t) => !usedA.has(t.info.trackId)).map((t) => t.info),
    onlyB: tracksB.filter((t) => !usedB.has(t.info.trackId)).map((t) => t.info),
  };
}
