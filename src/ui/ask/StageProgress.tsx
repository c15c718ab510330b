// The running question's stage: what it is doing, a bar, the time since it began and, once a rate
// is measured, the time left of the stage (./stage-estimate.ts).
import { useEffect, useState } from 'react';
import { useAskStore } from '../../state/ask-store.ts';
import { estimate, formatSeconds } from './stage-estimate.ts';

const STAGE_TEXT = { preprocess: 'Preparing the frames', vision: 'Looking at the frames', prefill: 'Reading the prompt', decode: 'Answering', server: 'Waiting for the server' } as const;

export function StageProgress() {
  const { status, stage, stageProgress, promptTokens, marks, rates, maxNewTokens, servedBy } = useAskStore();
  const running = status === 'running';
  // The clock moves between the worker's events, which can be a minute apart in the slow stages.
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => setNow(performance.now()), 500);
    return () => clearInterval(timer);
  }, [running]);
  if (!running || !stage) return null;

  const at = Math.max(now, marks?.stageStartedAt ?? 0);
  const e = marks ? estimate(marks, { progress: stageProgress, promptTokens, maxNewTokens, rates, now: at }) : undefined;
  const counts =
    stage === 'decode' && marks ? ` ${marks.generated} of at most ${maxNewTokens} tokens` : stageProgress ? ` ${stageProgress.done} of ${stageProgress.total}` : '';
  return (
    <div className="ask-stage" data-testid="ask-stage">
      {/* Only the stage is announced: a clock read out every second would drown everything else. */}
      <div aria-live="polite">
        {stage === 'server' && servedBy ? `Waiting for ${servedBy.host}` : STAGE_TEXT[stage]}
        {counts}
        {promptTokens && stage !== 'decode' ? ` (${promptTokens} prompt tokens)` : ''}…
      </div>
      {/* No fraction known: an indeterminate bar, never a full one for a stage still running. */}
      <progress aria-label={`${STAGE_TEXT[stage]} progress`} {...(e?.fraction !== undefined ? { max: 1, value: e.fraction } : {})} />
      {e && (
        <div className="ask-muted ask-time" data-testid="ask-time">
          <span data-testid="ask-elapsed">{formatSeconds(e.elapsedS)} elapsed</span>
          {e.leftS !== undefined && <span data-testid="ask-estimate">{` · ${e.bound} ${formatSeconds(Math.max(1, e.leftS))} left`}</span>}
        </div>
      )}
    </div>
  );
}
