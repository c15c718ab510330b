// Rough prompt size of a question before it is sent, for the ask panel's preview: the visual blocks
// are exact (planImage / planVideoFrame), the text is estimated at ~3.5 characters per token.
import { planImage, planVideoFrame } from '../../molmo2/image.ts';
import type { ScopePlan } from '../../state/results-types.ts';

const TEMPLATE_TOKENS = 12; // BOS, role markers and newlines of the chat template

export function estimatePromptTokens(plan: ScopePlan, frame: { width: number; height: number }, question: string): number {
  const n = plan.times.length;
  const visual =
    plan.mode === 'video'
      ? n * (planVideoFrame().numTokens + 3) // + the "t.t " timestamp text
      : n * planImage(frame.width, frame.height).numTokens + (n > 1 ? 3 * n : 0); // + "Image k"
  return visual + Math.ceil(question.length / 3.5) + TEMPLATE_TOKENS;
}
