// Player shortcuts, the correction keys (../results/edit-actions.ts), and ? for the shortcut sheet
// (listed in ../keys/shortcut-list.ts). None fires while the user types in a field.
import { useEffect } from 'react';
import { useVideoStore } from '../../state/video-store.ts';
import { isTyping } from '../keys/typing.ts';
import { handleEditKey } from '../results/edit-actions.ts';

export function useShortcuts(toggleSheet: () => void) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (isTyping(e.target)) return;
      // Corrections first: undo/redo (Ctrl/⌘ + Z …) and Delete in "Edit points" mode.
      if (handleEditKey(e)) return e.preventDefault();
      if (e.altKey || e.metaKey || e.ctrlKey) return;
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
