// The worker's limits, checked on the page before anything is decoded or sent: the same function
// the worker enforces (src/runtime/limits.ts), on the planned frames.
import { checkAskLimits, estimatePromptTokens, type AskLimits, type AskShape, type LimitCheck } from '../../../workers/inference-api.ts';
import { RELEASED_PROCESSOR_SETTINGS } from '../../molmo2/config.ts';
import { RELEASED_GEOMETRY } from '../../molmo2/image.ts';
import type { ScopePlan } from '../../state/results-types.ts';

export function shapeOfScope(plan: ScopePlan, frame: { width: number; height: number }, question: string): AskShape {
  return plan.mode === 'video'
    ? { question, visual: { kind: 'video', timestamps: plan.times.map((t) => t - plan.clipStartS) } }
    : { question, visual: { kind: 'images', sizes: plan.frames.map(() => ({ width: frame.width, height: frame.height })) } };
}

/** The verdict for a planned question, or just the token estimate when no model (and so no limits) is loaded. */
export function checkScope(plan: ScopePlan, frame: { width: number; height: number }, question: string, limits: AskLimits | undefined): Partial<LimitCheck> & { promptTokens: number } {
  const shape = shapeOfScope(plan, frame, question);
  if (limits) return checkAskLimits(shape, limits);
  return { promptTokens: estimatePromptTokens(shape, { settings: RELEASED_PROCESSOR_SETTINGS, geometry: RELEASED_GEOMETRY }) };
}
