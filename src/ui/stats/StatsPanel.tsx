// A small stats panel (toggled from the header, closed by Esc): where the time of the last question
// went, the device and the model, and "copy diagnostics" for bug reports.
import { useState } from 'react';
import { useEscapeCloses } from '../keys/escape.ts';
import { useAskStore } from '../../state/ask-store.ts';
import { useModelStore } from '../../state/model-store.ts';
import { diagnosticsText, statRows } from './diagnostics.ts';

export function StatsPanel({ onClose }: { onClose(): void }) {
  const caps = useModelStore((s) => s.capabilities);
  const model = useModelStore((s) => s.loaded);
  const timings = useAskStore((s) => s.timings);
  const [copied, setCopied] = useState<string | null>(null);
  useEscapeCloses(onClose);
  const rows = statRows(caps, model, timings);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(diagnosticsText(rows, navigator.userAgent));
      setCopied('Copied.');
    } catch {
      setCopied('The clipboard is not available here; select the text instead.');
    }
  };
  return (
    <section className="stats-panel" aria-label="Statistics" data-testid="stats-panel">
      <div className="stats-head">
        <h2>Stats</h2>
        <button type="button" onClick={() => void copy()}>
          Copy diagnostics
        </button>
        <button type="button" onClick={onClose} aria-label="Close statistics">
          ×
        </button>
      </div>
      {rows.length === 0 ? (
        <p className="results-muted">Nothing measured yet.</p>
      ) : (
        <dl>
          {rows.map((r) => (
            <div key={r.name}>
              <dt>{r.name}</dt>
              <dd data-stat={r.name}>{r.value}</dd>
            </div>
          ))}
        </dl>
      )}
      {copied && <div className="results-muted" aria-live="polite">{copied}</div>}
    </section>
  );
}
