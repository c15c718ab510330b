// "Edit points" for one run: the object a click on the video adds a point to, delete, undo, redo,
// back to the model's points, the run's sampled frames (the only ones edited), and why the last edit
// was refused. The gestures themselves are on the overlay (ResultsOverlay.tsx, edit-actions.ts).
import { nextTrackId, pointIndexAt, revertEdits, sampleAt } from '../../molmo2/export/edits.ts';
import { useEditStore } from '../../state/edit-store.ts';
import { useResultsStore } from '../../state/results-store.ts';
import type { Run } from '../../state/results-types.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { deleteSelectedPoint, redoLast, undoLast } from './edit-actions.ts';
import { useEscapeCloses } from '../keys/escape.ts';
import './edit-bar.css';

export function EditBar({ run }: { run: Run }) {
  // Esc leaves Edit points, as it closes a sheet or panel (before it would stop a running question).
  useEscapeCloses(() => useEditStore.getState().stop());
  const frame = useVideoStore((s) => s.frame);
  const addTrack = useEditStore((s) => s.addTrack);
  const message = useEditStore((s) => s.message);
  const canUndo = useEditStore((s) => (s.undo[run.id]?.length ?? 0) > 0);
  const canRedo = useEditStore((s) => (s.redo[run.id]?.length ?? 0) > 0);
  const selected = useResultsStore((s) => s.selected);
  const r = run.result;
  const sampled = r.video.sampledFrames;
  const ids = [...new Set(r.points.map((p) => p.trackId))].sort((a, b) => a - b);
  const labels = new Map(r.points.map((p) => [p.trackId, p.label]));
  const chosen = addTrack !== 'new' && ids.includes(addTrack) ? addTrack : 'new';
  const canDelete = selected?.runId === run.id && pointIndexAt(r, selected.trackId, frame) >= 0;
  const before = sampled.filter((f) => f < frame).at(-1);
  const after = sampled.find((f) => f > frame);
  const seek = (f: number | undefined) => f !== undefined && useVideoStore.getState().seek(f);

  return (
    <div className="edit-bar" data-testid="edit-bar" role="group" aria-label={`Corrections to “${run.question}”`}>
      <div className="edit-bar-row">
        <label>
          Add to{' '}
          <select value={String(chosen)} onChange={(e) => useEditStore.getState().setAddTrack(e.target.value === 'new' ? 'new' : Number(e.target.value))} aria-label="Object a click on the video adds a point to">
            {ids.map((id) => (
              <option key={id} value={id}>
                #{id}
                {labels.get(id) ? ` ${labels.get(id)}` : ''}
              </option>
            ))}
            <option value="new">new object (#{nextTrackId(r)})</option>
          </select>
        </label>
        <button type="button" onClick={deleteSelectedPoint} disabled={!canDelete}>
          Delete point
        </button>
        <button type="button" onClick={undoLast} disabled={!canUndo}>
          Undo
        </button>
        <button type="button" onClick={redoLast} disabled={!canRedo}>
          Redo
        </button>
        <button type="button" onClick={() => useEditStore.getState().apply(run.id, revertEdits)} disabled={!r.original}>
          Back to the model's points
        </button>
      </div>
      <div className="edit-bar-row">
        <button type="button" onClick={() => seek(before)} disabled={before === undefined} aria-label="Previous sampled frame">
          ◀ sampled
        </button>
        <button type="button" onClick={() => seek(after)} disabled={after === undefined} aria-label="Next sampled frame">
          sampled ▶
        </button>
        <span className="results-muted" data-testid="edit-hint">
          {sampleAt(r, frame) >= 0
            ? `Frame ${frame + 1} (sampled): drag a marker to move it, click the video to add a point, select a marker and press Delete to remove it.`
            : `Frame ${frame + 1} was not sent to the model: go to one of its ${sampled.length} sampled frames to edit.`}
        </span>
      </div>
      {message && (
        <div role="alert" className="results-error">
          {message}
        </div>
      )}
    </div>
  );
}
