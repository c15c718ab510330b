import { describe, expect, it } from 'vitest';
import { RELEASED_PROCESSOR_SETTINGS } from '../../molmo2/config.ts';
import { rangeSampleTimes } from '../../molmo2/video.ts';
import { DEFAULT_FRAME_CAP, useVideoStore } from '../../state/video-store.ts';
import { frameBudget } from './frame-budget.ts';

const range = { kind: 'range' as const, start: 0, end: 180 }; // a 3-minute range: 361 frames at 2 fps
const limits = (maxFrames: number) => ({ maxFrames, maxContext: 8192, settings: RELEASED_PROCESSOR_SETTINGS });

describe('frames sent against what Molmo2 would sample', () => {
  it('says how many of the reference frames a range sends, and why', () => {
    const reference = rangeSampleTimes(0, 180, { maxFrames: 384 }).length;
    expect(reference).toBe(361);
    expect(frameBudget(range, 64, 64, false, limits(64))?.note).toBe('64 of the 361 frames Molmo2 would sample: this GPU holds 64 frames in one question (a 8192-token context).');
    expect(frameBudget(range, 30, 30, true, limits(64))?.note).toBe('30 of the 361 frames Molmo2 would sample: the frame cap is 30; this GPU holds 64 frames in one question (a 8192-token context).');
    expect(frameBudget(range, 64, 64, false)?.note).toBe('64 of the 361 frames Molmo2 would sample: the frame cap is 64.');
    // A range that is sampled in full, and a selection that is not a range, say nothing.
    expect(frameBudget({ kind: 'range', start: 0, end: 10 }, 21, 64, false, limits(64))).toBeUndefined();
    expect(frameBudget({ kind: 'frames', frames: [1, 2] }, 2, 64, false, limits(64))).toBeUndefined();
  });

  it('the frame cap follows the loaded model until the user sets it', () => {
    const store = useVideoStore.getState();
    expect(store.maxFrames).toBe(DEFAULT_FRAME_CAP);
    store.followModelFrames(384);
    expect(useVideoStore.getState().maxFrames).toBe(384);
    store.followModelFrames(40);
    expect(useVideoStore.getState().maxFrames).toBe(40);
    store.setMaxFrames(12);
    store.followModelFrames(200);
    expect(useVideoStore.getState()).toMatchObject({ maxFrames: 12, maxFramesByHand: true });
  });
});
