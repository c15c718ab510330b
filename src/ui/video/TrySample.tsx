// "Try a sample" on the first screen, and the note about the sample while its clip is open: what is
// happening (making the clip, loading the demo model, asking), what the clip is, or why it stopped.
import { useEffect, useRef } from 'react';
import { sampleBusy, useSampleStore } from '../../state/sample-store.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { trySample } from './try-sample.ts';
import './sample.css';

export function TrySampleButton() {
  const phase = useSampleStore((s) => s.phase);
  const busy = sampleBusy(phase);
  return (
    <div className="try-sample">
      <button type="button" onClick={() => void trySample()} disabled={busy} data-testid="try-sample" aria-describedby="try-sample-about">
        {busy ? 'Making the sample…' : 'Try a sample'}
      </button>
      <p id="try-sample-about" className="try-sample-about">
        A short generated clip of moving shapes, never used in training, answered by the demo model.
      </p>
    </div>
  );
}

const PHASE_TEXT = {
  making: () => 'Making the sample clip…',
  opening: () => 'Opening the sample clip…',
  model: () => 'Loading the demo model for the sample… (its progress is in the Model panel)',
  asking: (q: string) => `Asking “${q}” about the whole sample clip…`,
  done: (q: string) => `Asked “${q}”: the answer and its track are drawn on the clip.`,
} as const;

/** The sample's progress or failure; shown while the sample is being made or its clip is open. */
export function SampleNote() {
  const { phase, file, question, scene, error, dismiss } = useSampleStore();
  const openFile = useVideoStore((s) => s.file);
  const ref = useRef<HTMLDivElement>(null);
  const opened = file !== null && openFile === file;
  // The button that started it is gone once the clip opens: the focus goes to this note, not the page.
  useEffect(() => {
    const at = document.activeElement;
    if (opened && (!at || at === document.body)) ref.current?.focus();
  }, [opened]);
  if (phase === 'idle' || (file !== null && !opened)) return null;
  const about = scene ? ` Test scene ${scene.index} of the demo's shapes (seed ${scene.seed}), not one the model trained on.` : '';
  return (
    <div className="sample-note" ref={ref} tabIndex={-1} data-testid="sample-note" data-phase={phase}>
      {phase === 'failed' ? (
        <p role="alert" className="sample-error" data-testid="sample-error">
          {error}
        </p>
      ) : (
        <p aria-live="polite" data-testid="sample-status">
          <strong>Sample.</strong> {PHASE_TEXT[phase](question ?? '')}
          {phase === 'done' && about}
        </p>
      )}
      {!sampleBusy(phase) && (
        <button type="button" aria-label="Dismiss the note about the sample" onClick={dismiss}>
          ×
        </button>
      )}
    </div>
  );
}
