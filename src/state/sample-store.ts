// "Try a sample": where the sample stands (making the clip, opening it, loading the demo model,
// asking), the clip it opened and the question it asks, and why it stopped when it failed. The steps
// themselves are in src/ui/video/try-sample.ts. In memory only.
import { create } from 'zustand';

export type SamplePhase = 'idle' | 'making' | 'opening' | 'model' | 'asking' | 'done' | 'failed';

export interface SampleState {
  phase: SamplePhase;
  /** The sample clip once made (the note about it shows while this file is the open one). */
  file: File | null;
  question?: string;
  /** The test scene the clip shows: its split's seed and its index. */
  scene?: { seed: number; index: number };
  /** Why the sample stopped (phase 'failed'); the app, and the clip when it opened, stay usable. */
  error?: string;
  update(patch: Partial<Omit<SampleState, 'update' | 'dismiss'>>): void;
  /** Closes the note (a failure's message, or the done note). */
  dismiss(): void;
}

/** While these run, a second "Try a sample" does nothing. */
export const sampleBusy = (phase: SamplePhase) => phase === 'making' || phase === 'opening' || phase === 'model' || phase === 'asking';

export const useSampleStore = create<SampleState>()((set) => ({
  phase: 'idle',
  file: null,
  update: (patch) => set(patch),
  dismiss: () => set({ phase: 'idle', error: undefined }),
}));
