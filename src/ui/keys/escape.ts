// Esc closes the newest open sheet or panel, and no other handler sees that key press: so a running
// question stops on Esc (AskBox) only when no sheet or panel is open.
import { useEffect, useRef } from 'react';

const layers: { close(): void }[] = [];

// Registered in the capture phase on window, so it runs before every other key handler of the page.
function onKey(e: KeyboardEvent) {
  if (e.key !== 'Escape' || e.isComposing || layers.length === 0) return;
  e.preventDefault();
  e.stopPropagation();
  layers[layers.length - 1].close();
}

/** While the calling component is mounted, Esc calls `close` (the newest mounted one first). */
export function useEscapeCloses(close: () => void): void {
  const latest = useRef(close);
  useEffect(() => {
    latest.current = close;
  });
  useEffect(() => {
    const layer = { close: () => latest.current() };
    layers.push(layer);
    if (layers.length === 1) window.addEventListener('keydown', onKey, true);
    return () => {
      layers.splice(layers.indexOf(layer), 1);
      if (layers.length === 0) window.removeEventListener('keydown', onKey, true);
    };
  }, []);
}
