import { describe, expect, it } from 'vitest';
import { askKey } from './ask-keys.ts';
import { PRESETS, presetQuestion } from './presets.ts';

const key = (k: string, mods: Partial<Pick<KeyboardEvent, 'altKey' | 'ctrlKey' | 'metaKey'>> = {}) => ({ key: k, altKey: false, ctrlKey: false, metaKey: false, ...mods });

describe('askKey', () => {
  it("'/' goes to the question and 1–5 choose the presets in order", () => {
    expect(askKey(key('/'), false, PRESETS.length)).toEqual({ kind: 'focus' });
    expect(['1', '2', '3', '4', '5'].map((k) => askKey(key(k), false, PRESETS.length))).toEqual([0, 1, 2, 3, 4].map((index) => ({ kind: 'preset', index })));
  });

  it('never fires while typing, with Ctrl, Alt or ⌘, or for a number past the last preset', () => {
    for (const k of ['/', '1', '5']) {
      expect(askKey(key(k), true, 5)).toBeNull();
      for (const mod of ['altKey', 'ctrlKey', 'metaKey'] as const) expect(askKey(key(k, { [mod]: true }), false, 5)).toBeNull();
    }
    expect(askKey(key('6'), false, 5)).toBeNull();
    expect(askKey(key('0'), false, 5)).toBeNull();
    // Shift + 1 and Shift + / arrive as other keys: '?' stays the sheet's.
    expect(askKey(key('!'), false, 5)).toBeNull();
    expect(askKey(key('?'), false, 5)).toBeNull();
  });

  it('leaves the player keys alone', () => {
    for (const k of [' ', 'k', 'K', 'ArrowLeft', 'ArrowRight', ',', '.', 'Home', 'End', '[', ']', '?', 'Escape', 'Enter']) expect(askKey(key(k), false, 5)).toBeNull();
  });
});

describe('presetQuestion', () => {
  it('selects the object word so typing replaces it, else puts the caret at the end', () => {
    const point = presetQuestion(PRESETS[0], false);
    expect(point.text).toBe('Point to the objects.');
    expect(point.text.slice(...point.select)).toBe('objects');
    const track = presetQuestion(PRESETS[2], true);
    expect(track.text.slice(...track.select)).toBe('object');
    expect(presetQuestion(PRESETS[3], true)).toEqual({ text: '', select: [0, 0] });
    const describe = presetQuestion(PRESETS[4], true);
    expect(describe).toEqual({ text: 'Describe what happens in this video.', select: [36, 36] });
  });
});
