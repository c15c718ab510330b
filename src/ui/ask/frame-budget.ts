// Says when a range question sends fewer frames than Molmo2's own processor would sample from that
// range (≤ 2 fps, at most max_frames), and why: the frame cap set by hand, or what this GPU holds.
import type { AskLimits } from '../../../workers/inference-api.ts';
import { RELEASED_PROCESSOR_SETTINGS } from '../../molmo2/config.ts';
import { rangeSampleTimes } from '../../molmo2/video.ts';
import type { Selection } from '../../state/video-store.ts';

export interface FrameBudget {
  sent: number;
  /** Frames the reference would sample from the range. */
  reference: number;
  note: string;
}

export function frameBudget(selection: Selection, sent: number, cap: number, capByHand: boolean, limits?: Pick<AskLimits, 'maxFrames' | 'maxContext' | 'settings'>): FrameBudget | undefined {
  if (selection.kind !== 'range') return undefined;
  const settings = limits?.settings ?? RELEASED_PROCESSOR_SETTINGS;
  const reference = rangeSampleTimes(selection.start, selection.end, { maxFrames: settings.maxFrames }).length;
  if (sent >= reference) return undefined;
  const holds = limits ? `this GPU holds ${limits.maxFrames} frames in one question (a ${limits.maxContext}-token context)` : undefined;
  const why =
    capByHand || !limits || limits.maxFrames > cap
      ? `the frame cap is ${cap}${holds ? `; ${holds}` : ''}`
      : holds!;
  return { sent, reference, note: `${sent} of the ${reference} frames Molmo2 would sample: ${why}.` };
}
