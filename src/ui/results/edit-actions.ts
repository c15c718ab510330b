// What the overlay, the edit bar and the keys do in "Edit points" mode, on the current frame: move,
// add and delete a point of the run being edited, and the undo/redo keys (listed in
// ../keys/shortcut-list.ts). Each edit is announced for screen readers.
import { addPoint, deletePoint, movePoint, pointIndexAt } from '../../molmo2/export/edits.ts';
import { undoTarget, useEditStore } from '../../state/edit-store.ts';
import { useResultsStore } from '../../state/results-store.ts';
import { useVideoStore } from '../../state/video-store.ts';

const frameNow = () => useVideoStore.getState().frame;
const round = (n: number) => Math.round(n);

export function movePointTo(runId: string, trackId: number, at: { x: number; y: number }): void {
  const out = useEditStore.getState().apply(runId, (r) => movePoint(r, trackId, frameNow(), at));
  if (out?.ok) useResultsStore.getState().announce(`Moved #${trackId} to (${round(at.x)}, ${round(at.y)}).`);
}

/** Adds a point at `at` to the chosen object (or a new one) and selects that object. */
export function addPointAt(at: { x: number; y: number }): void {
  const { runId, addTrack } = useEditStore.getState();
  if (!runId) return;
  // An object whose points were all deleted is gone: a point for it starts a new object.
  const out = useEditStore.getState().apply(runId, (r) => addPoint(r, frameNow(), r.points.some((p) => p.trackId === addTrack) ? addTrack : 'new', at));
  if (!out?.ok) return;
  useResultsStore.getState().select({ runId, trackId: out.trackId });
  useResultsStore.getState().announce(`Added a point of #${out.trackId} at (${round(at.x)}, ${round(at.y)}).`);
}

/** The point of the selected object on this frame, when it belongs to the run being edited. */
export function selectedPoint(): { runId: string; trackId: number } | null {
  const { runId } = useEditStore.getState();
  const { selected, runs } = useResultsStore.getState();
  const run = runs.find((r) => r.id === runId);
  if (!run || selected?.runId !== runId || pointIndexAt(run.result, selected.trackId, frameNow()) < 0) return null;
  return selected;
}

export function deleteSelectedPoint(): boolean {
  const sel = selectedPoint();
  if (!sel) return false;
  const out = useEditStore.getState().apply(sel.runId, (r) => deletePoint(r, sel.trackId, frameNow()));
  if (out?.ok) useResultsStore.getState().announce(`Deleted the point of #${sel.trackId} on frame ${frameNow() + 1}.`);
  return !!out?.ok;
}

export function undoLast(): boolean {
  const id = undoTarget();
  const done = !!id && useEditStore.getState().undoEdit(id);
  if (done) useResultsStore.getState().announce('Undid the last correction.');
  return done;
}

export function redoLast(): boolean {
  const id = undoTarget();
  const done = !!id && useEditStore.getState().redoEdit(id);
  if (done) useResultsStore.getState().announce('Redid the correction.');
  return done;
}

/**
 * Ctrl/⌘ + Z undoes, Ctrl/⌘ + Shift + Z and Ctrl + Y redo, Delete / Backspace deletes the selected
 * point in "Edit points" mode. True when the key was used. The caller leaves out keys typed in a field.
 */
export function handleEditKey(e: KeyboardEvent): boolean {
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && !e.altKey) {
    if (key === 'z') return e.shiftKey ? redoLast() : undoLast();
    if (key === 'y' && e.ctrlKey && !e.shiftKey) return redoLast();
    return false;
  }
  if ((e.key === 'Delete' || e.key === 'Backspace') && !e.altKey && !e.shiftKey && useEditStore.getState().runId) return deleteSelectedPoint();
  return false;
}
