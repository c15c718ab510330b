// Minimal ask box: a question, Ask / Cancel, the answer as it streams, and what the model was sent.
import { useState, type FormEvent } from 'react';
import { useModelStore } from '../model/model-store.ts';
import { useAskStore } from './ask-store.ts';
import { imageFileSource, type FrameSource } from './frame-source.ts';
import './ask-box.css';

const STAGE_TEXT = { preprocess: 'Preparing the frames', vision: 'Looking at the frames', prefill: 'Reading the prompt', decode: 'Answering' } as const;

export interface AskBoxProps {
  /** The video's current frame or selection; without it, questions go with an attached image or none. */
  frameSource?: FrameSource;
}

export function AskBox({ frameSource }: AskBoxProps) {
  const ready = useModelStore((s) => s.status === 'ready' && s.loaded !== undefined);
  const { question, setQuestion, ask, cancel, status, stage, answer, timings, error, promptTokens } = useAskStore();
  const [image, setImage] = useState<File | undefined>();
  const source = frameSource ?? (image ? imageFileSource(image) : undefined);
  const running = status === 'running';

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!ready || running) return;
    try {
      const visual = source ? await source.collect() : ({ kind: 'none' } as const);
      await ask(visual);
    } catch (err) {
      useAskStore.setState({ status: 'error', error: String((err as Error).message ?? err) });
    }
  };

  return (
    <section className="ask-box" aria-label="Ask" data-testid="ask-box" data-status={status}>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="ask-question">Question</label>
        <textarea id="ask-question" rows={2} value={question} placeholder="Point to every cup." onChange={(e) => setQuestion(e.target.value)} disabled={running} />
        <div className="ask-actions">
          <button type="submit" disabled={!ready || running || !question.trim()}>
            Ask
          </button>
          <button type="button" onClick={cancel} disabled={!running}>
            Cancel
          </button>
          {!frameSource && (
            <label className="ask-image">
              Image <input type="file" accept="image/*" onChange={(e) => setImage(e.target.files?.[0])} disabled={running} />
            </label>
          )}
        </div>
        <div className="ask-muted">{!ready ? 'Load a model first.' : source ? `Sends: ${source.describe()}` : 'Sends the question only (no frames).'}</div>
      </form>
      {running && stage && (
        <div className="ask-muted" aria-live="polite">
          {STAGE_TEXT[stage]}
          {promptTokens ? ` (${promptTokens} prompt tokens)` : ''}…
        </div>
      )}
      <output className="ask-answer" aria-live="polite" data-testid="answer">
        {answer}
      </output>
      {status === 'cancelled' && <div className="ask-muted">Stopped.</div>}
      {error && (
        <div role="alert" className="ask-error">
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
