// Corrections by hand (src/molmo2/export/edits.ts): which run is in "Edit points" mode, the object
// new points join, and each run's undo and redo steps. A correction is saved with its run in the
// history at once; the undo steps are kept in memory only (a reload keeps the corrected run, not its steps).
import { create } from 'zustand';
import type { EditOutcome } from '../molmo2/export/edits.ts';
import type { ResultJson } from '../molmo2/export/result.ts';
import { activeRun, useResultsStore } from './results-store.ts';

/** Undo steps kept per run. */
const MAX_STEPS = 100;

interface EditState {
  /** The run whose points clicks and drags on the video change; null: the video behaves as usual. */
  runId: string | null;
  /** The object a click on the video adds a point to. */
  addTrack: number | 'new';
  /** Earlier results of each run, newest last, and the results undone. */
  undo: Record<string, ResultJson[]>;
  redo: Record<string, ResultJson[]>;
  /** Why the last edit was refused (cleared by the next one). */
  message: string | null;
  start(runId: string): void;
  stop(): void;
  setAddTrack(track: number | 'new'): void;
  /** Applies an edit to the run's result; a refused one leaves the run as it was and says why. */
  apply(runId: string, edit: (r: ResultJson) => EditOutcome | ResultJson): EditOutcome | undefined;
  undoEdit(runId: string): boolean;
  redoEdit(runId: string): boolean;
}

/** A finished run (one still streaming is not edited). */
function editableRun(runId: string) {
  const run = useResultsStore.getState().runs.find((r) => r.id === runId);
  return run && run.status !== 'running' ? run : undefined;
}

export const useEditStore = create<EditState>()((set, get) => {
  const replace = (runId: string, result: ResultJson) => useResultsStore.getState().updateRun(runId, { result }, true);
  // Undo and redo are one move in opposite directions: the newest result of `from` comes back, and
  // the run's current result goes onto `to`.
  const step = (runId: string, from: 'undo' | 'redo', to: 'undo' | 'redo'): boolean => {
    const run = editableRun(runId);
    const s = get();
    const steps = s[from][runId] ?? [];
    if (!run || steps.length === 0) return false;
    set({ [from]: { ...s[from], [runId]: steps.slice(0, -1) }, [to]: { ...s[to], [runId]: [...(s[to][runId] ?? []), run.result] }, message: null } as Partial<EditState>);
    replace(runId, steps[steps.length - 1]);
    return true;
  };
  return {
    runId: null,
    addTrack: 'new',
    undo: {},
    redo: {},
    message: null,

    start: (runId) => set({ runId, addTrack: 'new', message: null }),
    stop: () => set({ runId: null, message: null }),
    setAddTrack: (addTrack) => set({ addTrack }),

    apply(runId, edit) {
      const run = editableRun(runId);
      if (!run) return undefined;
      const out = edit(run.result);
      const outcome: EditOutcome = 'ok' in out ? out : { ok: true, result: out, trackId: -1 };
      if (!outcome.ok) {
        set({ message: outcome.message });
        return outcome;
      }
      if (outcome.result === run.result) return outcome;
      const s = get();
      set({
        undo: { ...s.undo, [runId]: [...(s.undo[runId] ?? []), run.result].slice(-MAX_STEPS) },
        redo: { ...s.redo, [runId]: [] },
        message: null,
      });
      replace(runId, outcome.result);
      return outcome;
    },

    undoEdit: (runId) => step(runId, 'undo', 'redo'),
    redoEdit: (runId) => step(runId, 'redo', 'undo'),
  };
});

/** The run undo and redo act on: the one being edited, else the one selected for export. */
export function undoTarget(): string | undefined {
  const editing = useEditStore.getState().runId;
  if (editing && useResultsStore.getState().runs.some((r) => r.id === editing)) return editing;
  return activeRun(useResultsStore.getState())?.id;
}
