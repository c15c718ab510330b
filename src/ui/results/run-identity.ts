// Who a run is on screen: its name ("Run 3 · Track"), the tag before its marker ids ("Run 3 #1 cup"),
// and, when several runs are drawn together, its colour family. Pure, so it is unit-tested.
import type { ResultJson } from '../../molmo2/export/result.ts';
import type { Preset, Run } from '../../state/results-types.ts';
import { familyColor, runCount, type OverlayTrack } from '../../overlay/overlay-model.ts';

const PRESET_NAMES: Record<Preset, string> = { point: 'Point', count: 'Count', track: 'Track', ask: 'Free text', describe: 'Describe' };

export interface RunIdentity {
  /** "Run 3": the run's place in this video's history (oldest first), before its marker ids. */
  tag: string;
  /** "Run 3 · Track": the tag and the preset it was asked with. */
  name: string;
}

/** Every run's identity. Runs are numbered in the history's order, so deleting one renumbers later ones. */
export function runIdentities(runs: Run[]): Map<string, RunIdentity> {
  return new Map(runs.map((r, i) => [r.id, { tag: `Run ${i + 1}`, name: `Run ${i + 1} · ${PRESET_NAMES[r.preset]}` }]));
}

/**
 * The colour family of each drawn run, in the history's order; null when only one run is drawn (it
 * keeps the full palette, which tells its tracks apart best).
 */
export function runFamilies(runs: Run[]): Map<string, number | null> {
  const drawn = runs.filter((r) => r.visible);
  return new Map(drawn.map((r, k) => [r.id, drawn.length > 1 ? k : null]));
}

// Keyed by the run's tracks (themselves cached per points list), so a streaming answer whose points
// did not change keeps the same track objects and its swimlanes do not re-render.
const styled = new WeakMap<OverlayTrack[], Map<string, OverlayTrack[]>>();

/** A run's tracks as drawn: tagged with its run, and in its colour family when it has one. */
export function identifyTracks(tracks: OverlayTrack[], tag: string, family: number | null): OverlayTrack[] {
  const key = `${tag}|${family}`;
  const byKey = styled.get(tracks) ?? new Map<string, OverlayTrack[]>();
  styled.set(tracks, byKey);
  let out = byKey.get(key);
  if (!out) {
    out = tracks.map((t) => ({ ...t, runTag: tag, ...(family === null ? {} : { color: familyColor(family, t.id) }) }));
    byKey.set(key, out);
  }
  return out;
}

/**
 * The count badge: whose count it is, then the count and the object word ("Run 2 · Count: 4 cups").
 * Objects of several kinds (an answer with a tag per kind) are counted per kind ("2: 1 dog, 1 person").
 */
export function countBadge(name: string, result: ResultJson): string {
  const labels = [...new Set(result.points.map((p) => p.label).filter((l): l is string => !!l))];
  if (labels.length < 2) return `${name}: ${runCount(result)}${labels[0] ? ` ${labels[0]}` : ''}`;
  const perLabel = labels.map((label) => `${new Set(result.points.filter((p) => p.label === label).map((p) => p.trackId)).size} ${label}`);
  return `${name}: ${runCount(result)} (${perLabel.join(', ')})`;
}
