// Which run a run is compared with by default. Platform-free, so it is unit-tested.
import type { Run } from '../../state/results-types.ts';

/**
 * The run that `run` repeats: the run it re-ran when that is still here; else (runs of older
 * histories, or the same question typed again) the earliest earlier run with the same question,
 * preset and frames.
 */
export function originalOf(runs: Run[], id: string): Run | undefined {
  const i = runs.findIndex((r) => r.id === id);
  const run = runs[i];
  if (!run) return undefined;
  const rerunOf = run.rerunOf ? runs.find((r) => r.id === run.rerunOf) : undefined;
  if (rerunOf) return rerunOf;
  const same = (r: Run) => r.question === run.question && r.preset === run.preset && r.scope.mode === run.scope.mode && sameTimes(r.scope.times, run.scope.times);
  return runs.slice(0, i).find(same);
}

const sameTimes = (x: number[], y: number[]) => x.length === y.length && x.every((t, k) => Math.abs(t - y[k]) < 1e-6);

/** Run B for a comparison opened on run `id` (run A): its original, else the run before it, else the one after. */
export function defaultPartner(runs: Run[], id: string): string | undefined {
  const i = runs.findIndex((r) => r.id === id);
  if (i < 0) return undefined;
  return (originalOf(runs, id) ?? runs[i - 1] ?? runs[i + 1])?.id;
}
