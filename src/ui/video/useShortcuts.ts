// Player shortcuts. None fires while the user types in a field.
import { useEffect } from 'react';
import { useVideoStore } from '../../state/video-store.ts';

export const SHORTCUTS: [string, string][] = [
  ['Space / K', 'Play or pause'],
  ['← / →, , / .', 'One frame back / forward'],
  ['Shift + ← / →', 'Ten frames back / forward'],
  ['Home / End', 'First / last frame'],
  ['[ / ]', 'Range in / out at the playhead'],
  ['?', 'Show this sheet'],
];

const typing = (t: EventTarget | null) =>
  t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));

export function useShortcuts(toggleSheet: () => void) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (typing(e.target) || e.altKey || e.metaKey || e.ctrlKey) return;
      const s = useVideoStore.getState();
      const big = e.shiftKey ? 10 : 1;
      switch (e.key) {
        case ' ':
        case 'k':
        case 'K':
          s.setPlaying(!s.playing);
          break;
        case 'ArrowLeft':
        case ',':
          s.step(-big);
          break;
        case 'ArrowRight':
        case '.':
          s.step(big);
          break;
        case 'Home':
          s.seek(0);
          break;
        case 'End':
          s.seek(Number.MAX_SAFE_INTEGER);
          break;
        case '[':
          s.markIn();
          break;
        case ']':
          s.markOut();
          break;
        case '?':
          toggleSheet();
          break;
        default:
          return;
      }
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [toggleSheet]);
}
