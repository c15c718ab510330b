// Video, playhead and selection state (one store for the loaded video; models and answers have their own).
import { create } from 'zustand';
import type { VideoInfo } from '../../workers/decode-api.ts';
import { rangeSampleTimes } from '../molmo2/video.ts';

export type Selection = { kind: 'frames'; frames: number[] } | { kind: 'range'; start: number; end: number } | { kind: 'none' };

interface VideoState {
  info: VideoInfo | null;
  /** The open file (the export worker re-reads it for the annotated video). */
  file: File | null;
  /** Message of the last failed open; the previous video stays loaded. */
  error: string | null;
  loading: string | null;
  frame: number;
  playing: boolean;
  selection: Selection;
  /** Pending range start set with "[" (seconds). */
  rangeIn: number | null;
  /**
   * Most frames one question may send: the loaded model's plan for this GPU (at most the reference's
   * 384) until the user sets it by hand; DEFAULT_FRAME_CAP before any model is loaded.
   */
  maxFrames: number;
  /** Whether the user set the frame cap (then a model load leaves it alone). */
  maxFramesByHand: boolean;
  setLoaded(info: VideoInfo, file: File | null): void;
  setError(message: string | null): void;
  setLoading(name: string | null): void;
  seek(frame: number): void;
  step(delta: number): void;
  setPlaying(playing: boolean): void;
  selectFrame(frame: number, additive: boolean): void;
  selectRange(start: number, end: number): void;
  markIn(): void;
  markOut(): void;
  setMaxFrames(n: number): void;
  /** The frames the loaded model takes on this GPU: the cap follows unless the user set it. */
  followModelFrames(n: number): void;
}

/** Frame cap before a model says what the GPU holds. */
export const DEFAULT_FRAME_CAP = 64;
/** The reference processor's most frames (Molmo2's max_frames). */
export const MOST_FRAMES = 384;
const clampCap = (n: number) => Math.max(1, Math.min(MOST_FRAMES, Math.round(n)));

const clampFrame = (info: VideoInfo | null, f: number) => (info ? Math.min(Math.max(0, Math.round(f)), info.frameCount - 1) : 0);

export const useVideoStore = create<VideoState>((set, get) => ({
  info: null,
  file: null,
  error: null,
  loading: null,
  frame: 0,
  playing: false,
  selection: { kind: 'none' },
  rangeIn: null,
  maxFrames: DEFAULT_FRAME_CAP,
  maxFramesByHand: false,
  setLoaded: (info, file) => set({ info, file, error: null, loading: null, frame: 0, playing: false, selection: { kind: 'none' }, rangeIn: null }),
  setError: (error) => set({ error, loading: null }),
  setLoading: (loading) => set({ loading }),
  seek: (frame) => set({ frame: clampFrame(get().info, frame) }),
  step: (delta) => set({ frame: clampFrame(get().info, get().frame + delta), playing: false }),
  setPlaying: (playing) => set({ playing: playing && get().info !== null }),
  selectFrame: (frame, additive) => {
    const sel = get().selection;
    const frames = additive && sel.kind === 'frames' ? sel.frames : [];
    const next = frames.includes(frame) ? frames.filter((f) => f !== frame) : [...frames, frame].sort((a, b) => a - b);
    set({ selection: next.length ? { kind: 'frames', frames: next } : { kind: 'none' }, frame: clampFrame(get().info, frame) });
  },
  selectRange: (start, end) => set({ selection: { kind: 'range', start: Math.min(start, end), end: Math.max(start, end) } }),
  markIn: () => {
    const { info, frame } = get();
    if (info) set({ rangeIn: info.frameTimes[frame] });
  },
  markOut: () => {
    const { info, frame, rangeIn } = get();
    if (!info) return;
    const t = info.frameTimes[frame];
    get().selectRange(rangeIn ?? 0, t);
    set({ rangeIn: null });
  },
  setMaxFrames: (n) => set({ maxFrames: clampCap(n), maxFramesByHand: true }),
  followModelFrames: (n) => {
    if (!get().maxFramesByHand && n >= 1) set({ maxFrames: clampCap(n) });
  },
}));

/** Times Molmo2 would sample for the current selection (empty when no range is selected). */
export function selectionSampleTimes(selection: Selection, maxFrames: number): number[] {
  return selection.kind === 'range' ? rangeSampleTimes(selection.start, selection.end, { maxFrames }) : [];
}
