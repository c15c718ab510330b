import { describe, expect, it } from 'vitest';
import { buildResult } from '../../molmo2/export/result.ts';
import { trackingInput } from '../../molmo2/export/test-fixture.ts';
import { familyColor, overlayTracks, trackStyle } from '../../overlay/overlay-model.ts';
import { useResultsStore } from '../../state/results-store.ts';
import type { Preset, Run } from '../../state/results-types.ts';
import { countBadge, identifyTracks, runFamilies, runIdentities } from './run-identity.ts';

const result = buildResult(trackingInput());
const frameTimes = Array.from({ length: 90 }, (_, i) => i / 30);

function run(id: string, preset: Preset, visible = true): Run {
  return {
    id,
    fingerprint: 'f',
    createdAt: result.createdAt,
    question: `${preset} question`,
    preset,
    scope: { kind: 'range', mode: 'video', times: [], frames: [], clipStartS: 0, maxFrames: 64, label: 'range' },
    status: 'done',
    result,
    visible,
  };
}

describe('run identity', () => {
  it('names runs by their place in the history and their preset', () => {
    const names = runIdentities([run('a', 'point'), run('b', 'count'), run('c', 'ask')]);
    expect([...names.values()]).toEqual([
      { tag: 'Run 1', name: 'Run 1 · Point' },
      { tag: 'Run 2', name: 'Run 2 · Count' },
      { tag: 'Run 3', name: 'Run 3 · Free text' },
    ]);
  });

  it('gives each drawn run its own colour family, and none to a run drawn alone', () => {
    expect([...runFamilies([run('a', 'point', false), run('b', 'track')])]).toEqual([['b', null]]);
    expect([...runFamilies([run('a', 'point'), run('b', 'count', false), run('c', 'track')])]).toEqual([
      ['a', 0],
      ['c', 1],
    ]);
  });

  it('tags a run\'s tracks, keeps the palette alone and takes its family with others', () => {
    const tracks = overlayTracks('a', result, frameTimes);
    const alone = identifyTracks(tracks, 'Run 1', null);
    expect(alone.map((t) => [t.runTag, t.id, t.color])).toEqual([
      ['Run 1', 1, trackStyle(1).color],
      ['Run 1', 2, trackStyle(2).color],
    ]);
    const together = identifyTracks(tracks, 'Run 1', 1);
    expect(together.map((t) => t.color)).toEqual([familyColor(1, 1), familyColor(1, 2)]);
    // Shapes still follow the id, so neighbouring tracks of one run differ in shape too.
    expect(together.map((t) => t.shape)).toEqual([trackStyle(1).shape, trackStyle(2).shape]);
    // Cached: the same tracks and identity give the same objects (swimlanes do not re-render).
    expect(identifyTracks(tracks, 'Run 1', 1)).toBe(together);
  });

  it('names the run on the count badge', () => {
    const count = buildResult(trackingInput({ rawText: 'Counting the <points coords="1 1 500 500 2 200 200">cups</points> shows a total of 4.' }));
    expect(countBadge('Run 2 · Count', count)).toBe('Run 2 · Count: 4 cups');
  });

  it('counts each kind on the badge when the answer names several', () => {
    const two = buildResult(trackingInput({ rawText: '<points coords="1 1 500 500">dog</points> <points coords="1 2 200 200 3 300 300">people</points>' }));
    expect(countBadge('Run 1 · Point', two)).toBe('Run 1 · Point: 3 (1 dog, 2 people)');
  });
});

describe('which runs are drawn', () => {
  it('draws the newest run; a new run hides the earlier ones unless they were shown by hand', () => {
    const s = useResultsStore.getState();
    s.addRun(run('a', 'point'));
    s.addRun(run('b', 'track'));
    const visible = () => useResultsStore.getState().runs.map((r) => [r.id, r.visible]);
    expect(visible()).toEqual([
      ['a', false],
      ['b', true],
    ]);
    // Showing "a" by hand pins it: the next run hides only "b".
    useResultsStore.getState().toggleVisible('a');
    useResultsStore.getState().addRun(run('c', 'count'));
    expect(visible()).toEqual([
      ['a', true],
      ['b', false],
      ['c', true],
    ]);
    // Hiding it unpins it.
    useResultsStore.getState().toggleVisible('a');
    useResultsStore.getState().toggleVisible('a');
    expect(useResultsStore.getState().runs[0].pinned).toBe(true);
    useResultsStore.getState().toggleVisible('a');
    useResultsStore.getState().addRun(run('d', 'point'));
    expect(visible().filter(([, v]) => v)).toEqual([['d', true]]);
  });
});
