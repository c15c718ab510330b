// The ask panel: presets (Point, Count, Track, Ask, Describe), what the question is about (this
// frame, the selected frames, the selected range, or an opened image) with what will be sent, the
// question (Enter asks, Shift+Enter is a new line, Esc stops), and the answer as it streams (read from
// its run, where it is kept).
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useResultsStore } from '../../state/results-store.ts';
import { useVideoStore } from '../../state/video-store.ts';
import type { Preset } from '../../state/results-types.ts';
import { useModelStore } from '../../state/model-store.ts';
import { availableScopes, planScope, type ScopeKind } from '../video/scope.ts';
import { askQuestion } from './ask-run.ts';
import { useAskStore } from '../../state/ask-store.ts';
import { checkScope } from './limits-check.ts';
import { openVideoFile } from '../video/open-file.ts';
import './ask-box.css';

const STAGE_TEXT = { preprocess: 'Preparing the frames', vision: 'Looking at the frames', prefill: 'Reading the prompt', decode: 'Answering' } as const;

/** Each preset's question; the word in «» is selected so typing replaces it. */
const PRESETS: { id: Preset; name: string; template: (video: boolean) => string }[] = [
  { id: 'point', name: 'Point', template: () => 'Point to the «objects».' },
  { id: 'count', name: 'Count', template: () => 'How many «objects» are there?' },
  { id: 'track', name: 'Track', template: () => 'Track the «object».' },
  { id: 'ask', name: 'Free text', template: () => '' },
  { id: 'describe', name: 'Describe', template: (video) => (video ? 'Describe what happens in this video.' : 'Describe this image.') },
];

const SCOPE_NAMES: Record<ScopeKind, string> = { frame: 'This frame', frames: 'Selected frames', range: 'Selected range' };

export function AskBox() {
  const ready = useModelStore((s) => s.status === 'ready' && s.loaded !== undefined);
  const dtype = useModelStore((s) => s.loaded?.dtype);
  const limits = useModelStore((s) => s.loaded?.limits);
  const { question, preset, setQuestion, setPreset, cancel, status, stage, stageProgress, timings, error, promptTokens, runId, unattachedAnswer } = useAskStore();
  const runAnswer = useResultsStore((s) => (runId ? s.runs.find((r) => r.id === runId)?.result.rawText : undefined));
  const answer = runId ? (runAnswer ?? '') : (unattachedAnswer ?? '');
  const info = useVideoStore((s) => s.info);
  // Re-plan when what would be sent changes.
  useVideoStore((s) => s.selection);
  useVideoStore((s) => s.frame);
  useVideoStore((s) => s.maxFrames);
  const scopes = info ? availableScopes() : [];
  const [chosen, setChosen] = useState<ScopeKind | undefined>();
  const scopeKind = chosen && scopes.includes(chosen) ? chosen : scopes[0];
  const plan = scopeKind ? planScope(scopeKind) : undefined;
  const textRef = useRef<HTMLTextAreaElement>(null);
  const running = status === 'running';
  const selectionKind = useVideoStore((s) => s.selection.kind);
  useEffect(() => setChosen(undefined), [selectionKind]);

  // Esc stops a running question from anywhere on the page.
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

  const choosePreset = (p: (typeof PRESETS)[number]) => {
    setPreset(p.id);
    const text = p.template(plan?.mode === 'video');
    const start = text.indexOf('«');
    const end = text.indexOf('»') - 1;
    setQuestion(text.replace(/[«»]/g, ''));
    requestAnimationFrame(() => {
      const el = textRef.current;
      if (!el) return;
      el.focus();
      if (start >= 0) el.setSelectionRange(start, end);
      else el.setSelectionRange(el.value.length, el.value.length);
    });
  };

  const submit = async (e?: FormEvent) => {
    e?.preventDefault();
    if (!ready || running || !question.trim() || refused) return;
    await askQuestion(question, preset, plan);
  };

  const check = plan && info ? checkScope(plan, info, question, limits) : undefined;
  const refused = check?.ok === false;
  const sends = plan
    ? `${plan.label} · ≈${check!.promptTokens}${check?.maxPromptTokens ? ` of at most ${check.maxPromptTokens}` : ''} prompt tokens${dtype ? ` · ${dtype}` : ''}`
    : 'the question only (no frames; open a video or an image to ask about it)';

  return (
    <section className="ask-box" aria-label="Ask" data-testid="ask-box" data-status={status}>
      <form onSubmit={(e) => void submit(e)}>
        <div className="presets" role="group" aria-label="Presets">
          {PRESETS.map((p) => (
            <button type="button" key={p.id} aria-pressed={preset === p.id} onClick={() => choosePreset(p)} disabled={running}>
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
          aria-keyshortcuts="Enter"
        />
        <div className="ask-actions">
          <button type="submit" disabled={!ready || running || !question.trim() || refused} aria-keyshortcuts="Enter">
            Ask
          </button>
          <button type="button" onClick={cancel} disabled={!running} aria-keyshortcuts="Escape">
            Cancel
          </button>
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
        <div className="ask-muted" data-testid="ask-sends">
          {!ready ? 'Load a model first.' : `Sends: ${sends}`}
        </div>
        {ready && refused && (
          <div role="alert" className="ask-error" data-testid="ask-refused">
            {check.message}
          </div>
        )}
      </form>
      {running && stage && (
        <div className="ask-muted" aria-live="polite" data-testid="ask-stage">
          {STAGE_TEXT[stage]}
          {stageProgress ? ` ${stageProgress.done} of ${stageProgress.total}` : ''}
          {promptTokens ? ` (${promptTokens} prompt tokens)` : ''}…
          {stageProgress && <progress max={stageProgress.total} value={stageProgress.done} aria-label={`${STAGE_TEXT[stage]} progress`} />}
        </div>
      )}
      <output className="ask-answer" aria-live="polite" data-testid="answer">
        {answer}
      </output>
      {status === 'cancelled' && <div className="ask-muted">Stopped.</div>}
      {error && (
        <div role="alert" className="ask-error" data-testid="ask-error">
          {error}
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
