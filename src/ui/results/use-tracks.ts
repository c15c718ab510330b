// The tracks of the runs that are shown, on the open video's frames (memoised per run result), each
// tagged with its run and, when several runs are drawn, in its run's colour family.
import { useMemo } from 'react';
import { useResultsStore } from '../../state/results-store.ts';
import { useVideoStore } from '../../state/video-store.ts';
import type { Run } from '../../state/results-types.ts';
import { overlayTracks, type OverlayTrack } from '../../overlay/overlay-model.ts';
import { identifyTracks, runFamilies, runIdentities } from './run-identity.ts';

// Keyed by the points list: while an answer streams, a result whose text grew but whose points did
// not keeps the same list, and its tracks are not rebuilt.
const cache = new WeakMap<Run['result']['points'], { frameTimes: number[]; tracks: OverlayTrack[] }>();

export function tracksOfRun(run: Run, frameTimes: number[]): OverlayTrack[] {
  const hit = cache.get(run.result.points);
  if (hit && hit.frameTimes === frameTimes) return hit.tracks;
  const tracks = overlayTracks(run.id, run.result, frameTimes);
  cache.set(run.result.points, { frameTimes, tracks });
  return tracks;
}

export function useVisibleTracks(): OverlayTrack[] {
  const runs = useResultsStore((s) => s.runs);
  const info = useVideoStore((s) => s.info);
  return useMemo(() => (info ? drawnTracks(runs, info.frameTimes) : []), [runs, info]);
}

/** The shown runs' tracks as the overlay, the swimlanes and the results list draw them. */
export function drawnTracks(runs: Run[], frameTimes: number[]): OverlayTrack[] {
  const names = runIdentities(runs);
  const families = runFamilies(runs);
  return runs.filter((r) => r.visible).flatMap((r) => identifyTracks(tracksOfRun(r, frameTimes), names.get(r.id)!.tag, families.get(r.id) ?? null));
}
