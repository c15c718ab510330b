// The sheet of every key and mouse gesture (../keys/shortcut-list.ts). Esc, ?, Close or a click
// outside closes it; the focus goes back where it was.
import { useEffect, useRef } from 'react';
import { useEscapeCloses } from '../keys/escape.ts';
import { SHORTCUT_GROUPS } from '../keys/shortcut-list.ts';

export function ShortcutSheet({ onClose }: { onClose: () => void }) {
  useEscapeCloses(onClose);
  const closeButton = useRef<HTMLButtonElement>(null);
  // The focus moves to Close while the sheet is open, and back when it closes (however it closes).
  useEffect(() => {
    const before = document.activeElement;
    closeButton.current?.focus();
    return () => {
      if (before instanceof HTMLElement && before.isConnected) before.focus();
    };
  }, []);
  return (
    <div className="sheet-backdrop" onClick={onClose}>
      <div className="sheet" role="dialog" aria-modal="true" aria-label="Keyboard shortcuts" data-testid="shortcut-sheet" onClick={(e) => e.stopPropagation()}>
        <h2>Keys and gestures</h2>
        {SHORTCUT_GROUPS.map((g) => (
          <section key={g.name} aria-label={g.name}>
            <h3>{g.name}</h3>
            <dl>
              {g.items.map(([k, v]) => (
                <div key={k + v}>
                  <dt>
                    <kbd>{k}</kbd>
                  </dt>
                  <dd>{v}</dd>
                </div>
              ))}
            </dl>
          </section>
        ))}
        <p className="results-muted">Keys never act while you type in a field (Enter, Shift + Enter and Esc excepted).</p>
        <button type="button" onClick={onClose} ref={closeButton}>
          Close
        </button>
      </div>
    </div>
  );
}
