// Follow-up questions: a question asked about exactly the frames of an earlier answered run can
// continue that run's conversation. The earlier turns then go to the model in Molmo2's chat format
// (the worker renders them with the checkpoint's template), and — the frames and earlier turns being
// the same tokens — the worker keeps their KV cache instead of recomputing it (prefix reuse).
// Pure, so it is unit-tested.
import type { ChatTurn } from '../../molmo2/chat-template.ts';
import type { Run, ScopePlan } from '../../state/results-types.ts';

/** Whether two scopes send the model the same pixels in the same way (mode, frames, times, clip start). */
export function sameScope(a: ScopePlan, b: ScopePlan): boolean {
  const same = (x: number[], y: number[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return a.mode === b.mode && a.clipStartS === b.clipStartS && same(a.times, b.times) && same(a.frames, b.frames);
}

/**
 * A run a question about `scope` can follow up: an answered run (done, or stopped with the text it had)
 * of the same frames — the selected run when it qualifies, else the newest that does.
 */
export function followableRun(runs: readonly Run[], scope: ScopePlan, selectedId: string | null): Run | undefined {
  const ok = (r: Run | undefined): r is Run => r !== undefined && (r.status === 'done' || r.status === 'cancelled') && r.result.rawText.trim() !== '' && sameScope(r.scope, scope);
  const selected = runs.find((r) => r.id === selectedId);
  if (ok(selected)) return selected;
  for (let i = runs.length - 1; i >= 0; i--) if (ok(runs[i])) return runs[i];
  return undefined;
}

/**
 * The conversation a follow-up of `run` sends: the run's own earlier turns, then its question and the
 * model's text as generated (corrections to its points do not change what the model said).
 */
export function threadHistory(run: Run): ChatTurn[] {
  return [...(run.result.query.history ?? []), { question: run.question, answer: run.result.rawText }];
}
