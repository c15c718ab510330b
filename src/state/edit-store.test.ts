import { beforeEach, describe, expect, it } from 'vitest';
import { deletePoint, movePoint } from '../molmo2/export/edits.ts';
import { trackingResult } from '../molmo2/export/test-fixture.ts';
import { useEditStore } from './edit-store.ts';
import { useResultsStore } from './results-store.ts';
import type { Run } from './results-types.ts';

const model = trackingResult();
const run = (id: string, status: Run['status'] = 'done'): Run => ({
  id,
  fingerprint: 'f',
  createdAt: model.createdAt,
  question: 'Track the cars.',
  preset: 'track',
  scope: { kind: 'range', mode: 'video', times: model.video.sampledTimesS, frames: model.video.sampledFrames, clipStartS: 0, maxFrames: 64, label: 'range' },
  status,
  result: model,
  visible: true,
});
const result = (id: string) => useResultsStore.getState().runs.find((r) => r.id === id)!.result;
const edits = () => useEditStore.getState();

describe('edit store', () => {
  beforeEach(() => {
    // No IndexedDB here: saving fails quietly into storageError, the runs stay in memory.
    useResultsStore.setState({ runs: [run('a'), run('b'), run('live', 'running')], activeRunId: 'a' });
    useEditStore.setState({ runId: null, undo: {}, redo: {}, message: null });
  });

  it('applies edits to the run, undoes and redoes them per run, and a new edit drops the redo steps', () => {
    edits().apply('a', (r) => movePoint(r, 1, 0, { x: 10, y: 10 }));
    edits().apply('a', (r) => deletePoint(r, 2, 30));
    edits().apply('b', (r) => deletePoint(r, 1, 0));
    expect(result('a').points).toHaveLength(5);
    expect(result('a').original?.points).toEqual(model.points);

    expect(edits().undoEdit('a')).toBe(true);
    expect(result('a').points).toHaveLength(6);
    expect(edits().undoEdit('a')).toBe(true);
    expect(result('a')).toBe(model);
    expect(edits().undoEdit('a')).toBe(false);
    // Run b is untouched by a's undo.
    expect(result('b').points).toHaveLength(5);

    expect(edits().redoEdit('a')).toBe(true);
    expect(result('a').points[0].xPx).toBe(10);
    edits().apply('a', (r) => movePoint(r, 1, 0, { x: 20, y: 20 }));
    expect(edits().redoEdit('a')).toBe(false);
  });

  it('says why an edit was refused and changes nothing; a running run is not edited', () => {
    const out = edits().apply('a', (r) => movePoint(r, 7, 0, { x: 1, y: 1 }));
    expect(out).toEqual({ ok: false, message: 'Object #7 has no point on frame 1.' });
    expect(edits().message).toBe('Object #7 has no point on frame 1.');
    expect(result('a')).toBe(model);
    expect(edits().undo.a).toBeUndefined();
    expect(edits().apply('live', (r) => deletePoint(r, 1, 0))).toBeUndefined();
    expect(result('live')).toBe(model);
  });
});
