// The ask panel's page-wide keys: '/' focuses the question, 1–5 choose a preset. They never fire
// while the user types in a field, nor with Ctrl, Alt or ⌘ (the browser's and the system's own keys).
// Shift is not checked: Shift + 1 or Shift + / give other keys ('!', '?').

export type AskKey = { kind: 'focus' } | { kind: 'preset'; index: number };

export function askKey(e: Pick<KeyboardEvent, 'key' | 'altKey' | 'ctrlKey' | 'metaKey'>, typing: boolean, presets: number): AskKey | null {
  if (typing || e.altKey || e.ctrlKey || e.metaKey) return null;
  if (e.key === '/') return { kind: 'focus' };
  const n = /^[1-9]$/.test(e.key) ? Number(e.key) : 0;
  return n >= 1 && n <= presets ? { kind: 'preset', index: n - 1 } : null;
}
