// The ask box's follow-up switch: offered when the question is about exactly the frames of an
// answered run, it makes the question continue that run's conversation (thread.ts). Off by default,
// so a preset or a re-asked question gives the same answer as before; once on, it stays on and each
// answer becomes the next turn, until the frames change.
import type { ChatTurn } from '../../molmo2/chat-template.ts';
import { useAskStore } from '../../state/ask-store.ts';
import { useResultsStore } from '../../state/results-store.ts';
import type { Run, ScopePlan } from '../../state/results-types.ts';
import { runIdentities } from '../results/run-identity.ts';
import { followableRun, threadHistory } from './thread.ts';

/** The run a question about `plan` can follow up, and the conversation it would send when the switch is on. */
export function useFollowUp(plan: ScopePlan | undefined): { candidate?: Run; history?: ChatTurn[] } {
  const runs = useResultsStore((s) => s.runs);
  const activeRunId = useResultsStore((s) => s.activeRunId);
  const on = useAskStore((s) => s.followUp);
  const candidate = plan ? followableRun(runs, plan, activeRunId) : undefined;
  return { candidate, history: on && candidate ? threadHistory(candidate) : undefined };
}

export function FollowUpSwitch({ candidate, disabled }: { candidate: Run | undefined; disabled: boolean }) {
  const on = useAskStore((s) => s.followUp);
  const setFollowUp = useAskStore((s) => s.setFollowUp);
  const runs = useResultsStore((s) => s.runs);
  if (!candidate) return null;
  const name = runIdentities(runs).get(candidate.id)?.tag ?? 'the last run';
  const turns = threadHistory(candidate).length;
  return (
    <label className="ask-follow-up" data-testid="follow-up">
      <input type="checkbox" checked={on} disabled={disabled} onChange={(e) => setFollowUp(e.target.checked)} />
      Follow up on {name}
      <span className="ask-muted">
        {' '}
        (sends {turns === 1 ? 'the earlier turn' : `the ${turns} earlier turns`} with it)
      </span>
    </label>
  );
}
