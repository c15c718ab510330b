// The worker's limits, checked on the page before anything is decoded or sent: the same function
// the worker enforces (src/runtime/limits.ts), on the planned frames.
import { checkAskLimits, estimatePromptTokens, type AskLimits, type AskShape, type LimitCheck } from '../../../workers/inference-api.ts';
import { RELEASED_PROCESSOR_SETTINGS } from '../../molmo2/config.ts';
import { RELEASED_GEOMETRY } from '../../molmo2/image.ts';
import type { ScopePlan } from '../../state/results-types.ts';
import type { ChatTurn } from '../../molmo2/chat-template.ts';

export function shapeOfScope(plan: ScopePlan, frame: { width: number; height: number }, question: string, history?: ChatTurn[]): AskShape {
  const conversation = { question, ...(history?.length ? { history } : {}) };
  return plan.mode === 'video'
    ? { ...conversation, visual: { kind: 'video', timestamps: plan.times.map((t) => t - plan.clipStartS) } }
    : { ...conversation, visual: { kind: 'images', sizes: plan.frames.map(() => ({ width: frame.width, height: frame.height })) } };
}

/**
 * The verdict for a planned question (with a follow-up's earlier turns), or just the token estimate
 * when no model (and so no limits) is loaded.
 */
export function checkScope(plan: ScopePlan, frame: { width: number; height: number }, question: string, limits: AskLimits | undefined, history?: ChatTurn[]): Partial<LimitCheck> & { promptTokens: number } {
  const shape = shapeOfScope(plan, frame, question, history);
  if (limits) return checkAskLimits(shape, limits);
  return { promptTokens: estimatePromptTokens(shape, { settings: RELEASED_PROCESSOR_SETTINGS, geometry: RELEASED_GEOMETRY }) };
}
