// The ask panel: presets (Point, Count, Track, Ask, Describe; keys 1–5), what the question is about
// (this frame, the selected frames, the selected range, or an opened image) with what will be sent,
// the question ('/' goes to it; Enter asks, Shift+Enter is a new line, Esc stops), its answer limit
// (the preset's, or the user's choice), the stage with its time (StageProgress.tsx), and the answer as
// it streams (read from its run, where it is kept). While "Answer on a server" is on, it says where
// the question will run and that the frames leave the device.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { flushSync } from 'react-dom';
import { useResultsStore } from '../../state/results-store.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { useModelStore } from '../../state/model-store.ts';
import { useServerStore } from '../../state/server-store.ts';
import { availableScopes, planScope, type ScopeKind } from '../video/scope.ts';
import { askQuestion } from './ask-run.ts';
import { useAskStore } from '../../state/ask-store.ts';
import { checkScope } from './limits-check.ts';
import { frameBudget } from './frame-budget.ts';
import { FollowUpSwitch, useFollowUp } from './FollowUp.tsx';
import { openVideoFile } from '../video/open-file.ts';
import { isTyping } from '../keys/typing.ts';
import { askKey } from './ask-keys.ts';
import { ANSWER_LIMITS, PRESETS, presetQuestion } from './presets.ts';
import { StageProgress } from './StageProgress.tsx';
import { answerSummary, type AnswerSummary } from './answer-summary.ts';
import './ask-box.css';

const SCOPE_NAMES: Record<ScopeKind, string> = { frame: 'This frame', frames: 'Selected frames', range: 'Selected range' };

export function AskBox() {
  // A question goes to the answer server while it is on (no local model needed), else to the local model.
  const serverHost = useServerStore((s) => (s.on ? s.choice?.host : undefined));
  const localReady = useModelStore((s) => s.status === 'ready' && s.loaded !== undefined);
  const ready = localReady || serverHost !== undefined;
  const localDtype = useModelStore((s) => s.loaded?.dtype);
  const localLimits = useModelStore((s) => s.loaded?.limits);
  const dtype = serverHost ? undefined : localDtype;
  const limits = serverHost ? undefined : localLimits;
  const { question, preset, setQuestion, setPreset, cancel, status, timings, error, runId, unattachedAnswer, maxNewTokens, setMaxNewTokens, servedBy } = useAskStore();
  const runResult = useResultsStore((s) => (runId ? s.runs.find((r) => r.id === runId)?.result : undefined));
  const answer = runId ? (runResult?.rawText ?? '') : (unattachedAnswer ?? '');
  const summary = runResult ? answerSummary(runResult) : undefined;
  const info = useVideoStore((s) => s.info);
  // Re-plan when what would be sent changes.
  useVideoStore((s) => s.selection);
  useVideoStore((s) => s.frame);
  useVideoStore((s) => s.maxFrames);
  const scopes = info ? availableScopes() : [];
  const [chosen, setChosen] = useState<ScopeKind | undefined>();
  const scopeKind = chosen && scopes.includes(chosen) ? chosen : scopes[0];
  const plan = scopeKind ? planScope(scopeKind) : undefined;
  const followUp = useFollowUp(plan);
  const textRef = useRef<HTMLTextAreaElement>(null);
  // While an answer streams, its box follows the newest text.
  const answerRef = useRef<HTMLOutputElement>(null);
  useEffect(() => {
    const el = answerRef.current;
    if (el && status === 'running') el.scrollTop = el.scrollHeight;
  }, [answer, status]);
  const running = status === 'running';
  const selectionKind = useVideoStore((s) => s.selection.kind);
  useEffect(() => setChosen(undefined), [selectionKind]);

  // Esc stops a running question from anywhere on the page, unless a sheet or panel is open: Esc
  // closes that first, and this handler never sees the key (../keys/escape.ts).
  useEffect(() => {
    if (!running) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        cancel();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [running, cancel]);

  // No preset shows as pressed until one is chosen: the default (free text) is not a choice the user made.
  const [picked, setPicked] = useState(false);
  const choosePreset = (p: (typeof PRESETS)[number]) => {
    setPicked(true);
    setPreset(p.id);
    setMaxNewTokens(p.maxNewTokens);
    const { text, select } = presetQuestion(p, plan?.mode === 'video');
    // The new text is rendered and focused before this handler returns, so a key typed right after
    // the click lands in the question (a focus deferred to the next frame lost such keys).
    flushSync(() => setQuestion(text));
    const el = textRef.current;
    if (!el) return;
    el.focus();
    el.setSelectionRange(...select);
  };

  // '/' goes to the question, 1–5 choose a preset; never while typing, nor while a question runs.
  const choosePresetRef = useRef(choosePreset);
  useEffect(() => {
    choosePresetRef.current = choosePreset;
  });
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || useAskStore.getState().status === 'running') return;
      const action = askKey(e, isTyping(e.target), PRESETS.length);
      if (!action) return;
      // Prevented, so the key itself is not typed into the question it focuses.
      e.preventDefault();
      if (action.kind === 'focus') textRef.current?.focus();
      else choosePresetRef.current(PRESETS[action.index]);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const submit = async (e?: FormEvent) => {
    e?.preventDefault();
    if (!ready || running || !question.trim() || refused) return;
    await askQuestion(question, preset, plan);
  };

  // The frame cap follows what the loaded model takes on this GPU, unless the user set it.
  useEffect(() => {
    if (localLimits) useVideoStore.getState().followModelFrames(Math.min(localLimits.maxFrames, localLimits.settings.maxFrames));
  }, [localLimits]);
  const capByHand = useVideoStore((s) => s.maxFramesByHand);
  const selection = useVideoStore((s) => s.selection);
  const budget = plan?.kind === 'range' ? frameBudget(selection, plan.times.length, plan.maxFrames, capByHand, limits) : undefined;
  const check = plan && info ? checkScope(plan, info, question, limits, followUp.history) : undefined;
  const refused = check?.ok === false;
  const sends = plan
    ? `${plan.label} · ≈${check!.promptTokens}${check?.maxPromptTokens ? ` of at most ${check.maxPromptTokens}` : ''} prompt tokens${dtype ? ` · ${dtype}` : ''}`
    : 'the question only (no frames; open a video or an image to ask about it)';

  return (
    <section className="ask-box" aria-label="Ask" data-testid="ask-box" data-status={status}>
      <form onSubmit={(e) => void submit(e)}>
        <div className="presets" role="group" aria-label="Presets">
          {PRESETS.map((p, i) => (
            <button type="button" key={p.id} aria-pressed={picked && preset === p.id} onClick={() => choosePreset(p)} disabled={running} aria-keyshortcuts={String(i + 1)} title={`${p.name} (${i + 1})`}>
              {p.name}
            </button>
          ))}
        </div>
        {plan && (
          <fieldset className="scope" disabled={running}>
            <legend>About</legend>
            {(['frame', 'frames', 'range'] as const).map((k) => (
              <label key={k} className={scopes.includes(k) ? '' : 'unavailable'}>
                <input type="radio" name="scope" value={k} checked={scopeKind === k} disabled={!scopes.includes(k)} onChange={() => setChosen(k)} />
                {SCOPE_NAMES[k]}
              </label>
            ))}
          </fieldset>
        )}
        <label htmlFor="ask-question">Question</label>
        <textarea
          id="ask-question"
          ref={textRef}
          rows={2}
          value={question}
          placeholder="Point to every cup."
          onChange={(e) => setQuestion(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              void submit();
            }
          }}
          disabled={running}
          aria-keyshortcuts="/ Enter"
        />
        <FollowUpSwitch candidate={followUp.candidate} disabled={running} />
        <div className="ask-actions">
          <button type="submit" disabled={!ready || running || !question.trim() || refused} aria-keyshortcuts="Enter">
            Ask
          </button>
          <button type="button" onClick={cancel} disabled={!running} aria-keyshortcuts="Escape">
            Stop
          </button>
          <label className="ask-limit">
            Answer limit{' '}
            <select value={maxNewTokens} onChange={(e) => setMaxNewTokens(Number(e.target.value))} disabled={running} data-testid="answer-limit">
              {ANSWER_LIMITS.map((n) => (
                <option key={n} value={n}>
                  {n} tokens
                </option>
              ))}
            </select>
          </label>
          <label className="ask-image">
            Open image…
            <input
              type="file"
              accept="image/*"
              data-testid="image-input"
              disabled={running}
              onChange={(e) => {
                const file = e.target.files?.[0];
                e.target.value = '';
                if (file) void openVideoFile(file);
              }}
            />
          </label>
        </div>
        {serverHost && (
          <div className="ask-where" data-testid="ask-where">
            Runs on {serverHost} — frames leave this device
          </div>
        )}
        <div className="ask-muted" data-testid="ask-sends">
          {!ready ? 'Load a model first (or turn on “Answer on a server”).' : `Sends: ${sends}`}
        </div>
        {budget && (
          <div className="ask-muted" data-testid="ask-frames-note">
            {budget.note}
          </div>
        )}
        {ready && refused && (
          <div role="alert" className="ask-error" data-testid="ask-refused">
            {check.message}
          </div>
        )}
      </form>
      <StageProgress />
      {summary ? (
        <AnswerView summary={summary} text={answer} />
      ) : (
        // An answer without points or a count is plain text: the text is the answer.
        // Focusable once it has text: a long answer scrolls in its box, and the keyboard must scroll it too.
        <output className="ask-answer ask-streamed" aria-live="polite" data-testid="answer" ref={answerRef} tabIndex={answer ? 0 : undefined}>
          {answer}
        </output>
      )}
      {status === 'cancelled' && <div className="ask-muted">Stopped.</div>}
      {error && (
        <div role="alert" className="ask-error" data-testid="ask-error">
          {error}
        </div>
      )}
      {servedBy?.ms !== undefined && status === 'done' && (
        <div className="ask-muted" data-testid="ask-stats">
          Answered by {servedBy.host} in {(servedBy.ms / 1000).toFixed(1)} s
        </div>
      )}
      {timings && (
        <div className="ask-muted" data-testid="ask-stats">
          {timings.generatedTokens} tokens · vision {Math.round(timings.visionMs)} ms · prefill {timings.prefillTokensPerSecond.toFixed(1)} tok/s · decode{' '}
          {timings.decodeTokensPerSecond.toFixed(2)} tok/s
        </div>
      )}
    </section>
  );
}

/** What was found, how many and when, the points, and the model's own text behind a toggle. */
function AnswerView({ summary, text }: { summary: AnswerSummary; text: string }) {
  return (
    <div className="ask-result" data-testid="answer-summary">
      <p className="ask-headline" aria-live="polite" data-testid="answer-headline">
        {summary.headline}
      </p>
      {summary.points.length > 0 && (
        // Focusable: a long list scrolls, and the keyboard must be able to scroll it.
        <ol className="ask-points" aria-label="Points in the answer" data-testid="answer-points" tabIndex={0}>
          {summary.points.map((p, i) => (
            <li key={i}>
              #{p.trackId}
              {p.label ? ` ${p.label}` : ''} · {p.frame >= 0 ? `frame ${p.frame} · ` : ''}
              {p.time} · ({p.x}, {p.y}) px
            </li>
          ))}
        </ol>
      )}
      {/* Collapsed, the text stays in the DOM (as text, never HTML), so copying and tests still read it. */}
      <details className="ask-raw">
        <summary>Model text</summary>
        <output className="ask-answer" data-testid="answer">
          {text}
        </output>
      </details>
    </div>
  );
}
