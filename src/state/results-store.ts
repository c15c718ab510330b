// Runs (questions and answers) of the open video: the history, which runs are shown, the selected
// run (the one the export bar acts on) and track, the pair being compared, and how the overlay draws. Persisted per video in IndexedDB.
import { create } from 'zustand';
import { deleteRun, loadRuns, saveRun } from './history-db.ts';
import type { Run } from './results-types.ts';

export interface OverlaySettings {
  /** Trail length in sampled positions (0 = off). */
  trail: number;
  interpolate: boolean;
}

interface ResultsState {
  /** Fingerprint of the open video; runs belong to it. */
  fingerprint: string | null;
  runs: Run[];
  selected: { runId: string; trackId: number } | null;
  /** The run the export bar acts on; null means the newest (see `activeRun`). A new run becomes it. */
  activeRunId: string | null;
  /** The two runs compared (A, B): while set, they alone are drawn (see `setCompare`). */
  compare: [string, string] | null;
  /** Each run's `visible` from before the comparison, put back when it closes. */
  compareRestore: Record<string, boolean> | null;
  overlay: OverlaySettings;
  /** Last history storage problem (the in-memory history still works). */
  storageError: string | null;
  /** Screen-reader announcement of the newest results. */
  announcement: string;
  openVideo(fingerprint: string): Promise<void>;
  addRun(run: Run): void;
  updateRun(id: string, patch: Partial<Run>, persist?: boolean): void;
  removeRun(id: string): void;
  toggleVisible(id: string): void;
  select(sel: { runId: string; trackId: number } | null): void;
  setActiveRun(id: string): void;
  setCompare(pair: [string, string] | null): void;
  setOverlay(patch: Partial<OverlaySettings>): void;
  announce(text: string): void;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export const useResultsStore = create<ResultsState>()((set, get) => {
  const persist = (run: Run) =>
    saveRun(run).catch((e: unknown) => set({ storageError: `The history could not be saved (${message(e)}); it stays until the page is closed.` }));
  return {
    fingerprint: null,
    runs: [],
    selected: null,
    activeRunId: null,
    compare: null,
    compareRestore: null,
    overlay: { trail: 6, interpolate: false },
    storageError: null,
    announcement: '',

    async openVideo(fingerprint) {
      set({ fingerprint, runs: [], selected: null, activeRunId: null, compare: null, storageError: null });
      try {
        const runs = await loadRuns(fingerprint);
        // A run still "running" in storage was cut off by a closed page.
        const restored = runs.map((r) => (r.status === 'running' ? { ...r, status: 'cancelled' as const } : r));
        if (get().fingerprint === fingerprint) set({ runs: [...restored, ...get().runs.filter((r) => !runs.some((k) => k.id === r.id))] });
      } catch (e) {
        set({ storageError: `The history of this video could not be read (${message(e)}).` });
      }
    },

    // Only the newest run is drawn by default: a new run hides the earlier ones the user did not pin.
    addRun(run) {
      get().setCompare(null); // a new answer ends a comparison and is drawn as usual
      const hidden: Run[] = [];
      const earlier = get().runs.map((r) => {
        if (!r.visible || r.pinned) return r;
        const off = { ...r, visible: false };
        hidden.push(off);
        return off;
      });
      set({ runs: [...earlier, { ...run, visible: true }], activeRunId: run.id });
      void persist({ ...run, visible: true });
      for (const r of hidden) void persist(r);
    },

    updateRun(id, patch, save = false) {
      let changed: Run | undefined;
      set({ runs: get().runs.map((r) => (r.id === id ? (changed = { ...r, ...patch }) : r)) });
      if (save && changed) void persist(changed);
    },

    removeRun(id) {
      if (get().compare?.includes(id)) get().setCompare(null);
      const s = get();
      set({
        runs: s.runs.filter((r) => r.id !== id),
        selected: s.selected?.runId === id ? null : s.selected,
        activeRunId: s.activeRunId === id ? null : s.activeRunId,
        compare: s.compare?.includes(id) ? null : s.compare,
      });
      void deleteRun(id).catch(() => {});
    },

    // Showing a run by hand pins it (it stays drawn when newer runs arrive); hiding it unpins it.
    toggleVisible(id) {
      const run = get().runs.find((r) => r.id === id);
      if (run) get().updateRun(id, { visible: !run.visible, pinned: !run.visible }, true);
    },

    select: (selected) => set({ selected }),
    setActiveRun: (activeRunId) => set({ activeRunId }),
    // Comparing draws the two runs alone, in memory only (the saved flags stay the user's); closing
    // puts back what was drawn before, except on runs whose box the user changed meanwhile.
    setCompare(pair) {
      const s = get();
      if (pair) {
        const restore = s.compare ? s.compareRestore : Object.fromEntries(s.runs.map((r) => [r.id, r.visible]));
        set({ compare: pair, compareRestore: restore, runs: s.runs.map((r) => (r.visible === pair.includes(r.id) ? r : { ...r, visible: !r.visible })) });
        return;
      }
      if (!s.compare) return;
      const drawn = s.compare;
      const restored: Run[] = [];
      const runs = s.runs.map((r) => {
        const was = s.compareRestore?.[r.id];
        if (was === undefined || was === r.visible || r.visible !== drawn.includes(r.id)) return r;
        const back = { ...r, visible: was };
        restored.push(back);
        return back;
      });
      set({ compare: null, compareRestore: null, runs });
      // Something may have saved a run while it was drawn for the comparison.
      for (const r of restored) void persist(r);
    },
    setOverlay: (patch) => set({ overlay: { ...get().overlay, ...patch } }),
    announce: (announcement) => set({ announcement }),
  };
});

/** The run the export bar acts on: the chosen one, else the newest. */
export function activeRun(s: Pick<ResultsState, 'runs' | 'activeRunId'>): Run | undefined {
  return s.runs.find((r) => r.id === s.activeRunId) ?? s.runs.at(-1);
}

export function newRunId(): string {
  return crypto.randomUUID();
}
