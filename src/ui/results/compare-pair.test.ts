import { beforeEach, describe, expect, it } from 'vitest';
import { buildResult } from '../../molmo2/export/result.ts';
import { trackingInput } from '../../molmo2/export/test-fixture.ts';
import { useResultsStore } from '../../state/results-store.ts';
import type { Run } from '../../state/results-types.ts';
import { defaultPartner, originalOf } from './compare-pair.ts';

const result = buildResult(trackingInput());

function run(id: string, question = `question ${id}`, times = [0]): Run {
  return {
    id,
    fingerprint: 'f',
    createdAt: result.createdAt,
    question,
    preset: 'point',
    scope: { kind: 'frame', mode: 'images', times, frames: times.map((t) => t * 10), clipStartS: 0, maxFrames: 1, label: 'frame' },
    status: 'done',
    result,
    visible: false,
  };
}

describe('the default partner', () => {
  it('compares a re-run with its original, not with the run just before it', () => {
    const runs = [run('a', 'cups'), run('b', 'boxes'), run('c', 'cups'), run('d', 'cups')];
    expect(originalOf(runs, 'd')?.id).toBe('a');
    expect(defaultPartner(runs, 'd')).toBe('a');
    expect(defaultPartner(runs, 'c')).toBe('a');
  });

  it('takes the run a re-run records it repeated, when that run is still here', () => {
    // "c" re-ran "b" (both ask about cups): the recorded origin wins over the earliest same question.
    const runs = [run('a', 'cups'), run('b', 'cups'), { ...run('c', 'cups'), rerunOf: 'b' }];
    expect(originalOf(runs, 'c')?.id).toBe('b');
    expect(originalOf([runs[0], runs[2]], 'c')?.id).toBe('a');
  });

  it('is the run before otherwise, or the one after for the first run', () => {
    // Same question about other frames, or another question: not a re-run.
    const runs = [run('a', 'cups', [0]), run('b', 'cups', [0.5]), run('c', 'boxes')];
    expect(originalOf(runs, 'b')).toBeUndefined();
    expect(defaultPartner(runs, 'b')).toBe('a');
    expect(defaultPartner(runs, 'c')).toBe('b');
    expect(defaultPartner(runs, 'a')).toBe('b');
    expect(defaultPartner([run('a')], 'a')).toBeUndefined();
    expect(defaultPartner(runs, 'missing')).toBeUndefined();
  });
});

describe('comparing in the store', () => {
  const shown = () => useResultsStore.getState().runs.filter((r) => r.visible).map((r) => r.id);
  beforeEach(() => {
    useResultsStore.setState({ runs: [], compare: null, compareRestore: null });
    const s = useResultsStore.getState();
    for (const id of ['a', 'b', 'c']) s.addRun(run(id));
    s.toggleVisible('b'); // b pinned, c newest: b and c drawn
  });

  it('draws the two runs alone, and puts back what was drawn when it closes', () => {
    expect(shown()).toEqual(['b', 'c']);
    useResultsStore.getState().setCompare(['c', 'a']);
    expect(shown()).toEqual(['a', 'c']);
    // Another pair: still those two alone; closing restores the state from before the first.
    useResultsStore.getState().setCompare(['a', 'b']);
    expect(shown()).toEqual(['a', 'b']);
    useResultsStore.getState().setCompare(null);
    expect(shown()).toEqual(['b', 'c']);
    expect(useResultsStore.getState().compare).toBeNull();
    expect(useResultsStore.getState().runs.find((r) => r.id === 'b')?.pinned).toBe(true);
  });

  it('keeps a run the user showed or hid while comparing as the user left it', () => {
    useResultsStore.getState().setCompare(['c', 'a']);
    useResultsStore.getState().toggleVisible('c'); // hidden by hand
    useResultsStore.getState().setCompare(null);
    expect(shown()).toEqual(['b']);
  });

  it('ends the comparison, restoring first, when a compared run is deleted or a new run arrives', () => {
    useResultsStore.getState().setCompare(['c', 'a']);
    useResultsStore.getState().removeRun('a');
    expect(useResultsStore.getState().compare).toBeNull();
    expect(shown()).toEqual(['b', 'c']);
    useResultsStore.getState().setCompare(['c', 'b']);
    useResultsStore.getState().addRun(run('d'));
    expect(useResultsStore.getState().compare).toBeNull();
    // As after any new run: the pinned run stays, the unpinned one is hidden.
    expect(shown()).toEqual(['b', 'd']);
  });
});
