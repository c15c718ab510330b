// What a question about the video is about: the current frame, the selected frames (sent as several
// images) or the selected range (sampled as Molmo2 samples video and sent as a clip starting at the
// range start). Planning is synchronous, so the ask panel can show what will be sent before it is.
import type { AskVisual } from '../../../workers/inference-api.ts';
import { formatTime, presentedFrameIndex } from '../../molmo2/video.ts';
import { selectionSampleTimes, useVideoStore } from '../../state/video-store.ts';
import type { ScopePlan } from '../../state/results-types.ts';
import { decoder } from './decode-client.ts';

export type ScopeKind = ScopePlan['kind'];

/** The scopes the current selection offers, the selection's own first. */
export function availableScopes(): ScopeKind[] {
  const { info, selection } = useVideoStore.getState();
  if (!info) return [];
  if (selection.kind === 'range') return ['range', 'frame'];
  if (selection.kind === 'frames') return ['frames', 'frame'];
  return ['frame'];
}

export function planScope(kind: ScopeKind): ScopePlan | undefined {
  const { info, selection, frame, maxFrames } = useVideoStore.getState();
  if (!info) return undefined;
  if (kind === 'range' && selection.kind === 'range') {
    const times = selectionSampleTimes(selection, maxFrames);
    return {
      kind,
      mode: 'video',
      times,
      frames: times.map((t) => presentedFrameIndex(t, info.frameTimes)),
      clipStartS: selection.start,
      maxFrames,
      label: `${times.length} frames as video, ${formatTime(selection.start)}–${formatTime(selection.end)}`,
    };
  }
  const frames = kind === 'frames' && selection.kind === 'frames' ? selection.frames : [frame];
  return {
    kind: frames.length > 1 || kind === 'frames' ? 'frames' : 'frame',
    mode: 'images',
    times: frames.map((f) => info.frameTimes[f]),
    frames,
    clipStartS: 0,
    maxFrames,
    label: frames.length > 1 ? `${frames.length} frames as images (${frames.map((f) => f + 1).join(', ')})` : `frame ${frames[0] + 1} at ${formatTime(info.frameTimes[frames[0]])}`,
  };
}

/**
 * Decodes the planned frames; ImageBitmaps are transferred to the inference worker. Each frame is
 * keyed by the file's fingerprint and its frame index, so the worker can reuse its vision features.
 */
export async function collectScope(plan: ScopePlan, fingerprint: string): Promise<AskVisual> {
  const keys = plan.frames.map((f) => `${fingerprint}#${f}`);
  if (plan.mode === 'video') {
    const bitmaps = await decoder().framesAt(plan.times);
    return { kind: 'video', frames: bitmaps.map((image, k) => ({ image, timestamp: plan.times[k] - plan.clipStartS, key: keys[k] })) };
  }
  const images = await Promise.all(plan.frames.map((f) => decoder().frameAt(f)));
  return { kind: 'images', images, keys };
}
