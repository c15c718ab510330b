// One answer: (vision features) → prefill → greedy decode until <|im_end|>, the token limit or a
// cancel. When the decoder's cache already holds this prompt's prefix (a follow-up over the same
// frames) only the new tokens are prefilled and the vision encoder does not run at all; otherwise
// the features come from the feature cache / vision encoder and stay on the GPU. Per decode step only
// the next token id (or the last logits row) comes back to the CPU, and the streamed text is decoded
// incrementally.
import type { AskEvent, StageTimings } from './api-types.ts';
import type { DecoderRunner } from './decoder-runner.ts';
import type { PlannedInputs, VisualItem } from './inputs.ts';
import { reusablePrefix } from './prefix.ts';
import { TextStream } from './text-stream.ts';
import type { Features } from './vision-features.ts';

export interface GenerateContext {
  runner: DecoderRunner;
  decode: (ids: number[]) => string;
  eosId: number;
  /**
   * image_features of the items in prompt order (feature cache + vision encoder), or undefined when
   * cancelled; `onProgress` gets the items done of all after the cache lookup and after each vision run.
   */
  features: (items: VisualItem[], poolSize: number, onProgress: (done: number, total: number) => void) => Promise<Features | undefined>;
  /**
   * Identity of the visual input behind the cache's image tokens (see PlannedInputs.visualId); generate
   * updates it. undefined = unknown, so a prefix with image tokens is never kept.
   */
  cache: { visualId: string | undefined };
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** performance.now() when the request arrived (for the time to first token). */
  startedAt: number;
  /** Milliseconds already spent on preparing the prompt. */
  preprocessMs: number;
  isCancelled: () => boolean;
  onEvent: (e: AskEvent) => void;
  /** Keep the cached prefix when it matches (default true). */
  reusePrefix?: boolean;
  /** Also return the logits that chose each token (diagnostics and tests). */
  returnLogits?: boolean;
  /**
   * Feed these tokens to the decode steps instead of the model's choices (teacher forcing along a
   * reference's tokens; tests and measurements only). The returned tokens stay the model's choices.
   */
  forceTokens?: readonly number[];
}

export type DoneEvent = Extract<AskEvent, { type: 'done' }> & { logits?: Float32Array[] };

export async function generate(ctx: GenerateContext, inputs: PlannedInputs, o: GenerateOptions): Promise<DoneEvent> {
  const { prompt, items } = inputs;
  const timings: StageTimings = {
    preprocessMs: o.preprocessMs,
    visionMs: 0,
    prefillMs: 0,
    decodeMs: 0,
    promptTokens: prompt.inputIds.length,
    generatedTokens: 0,
    prefillTokensPerSecond: 0,
    decodeTokensPerSecond: 0,
    timeToFirstTokenMs: 0,
    visualItems: items.length,
    visionEncoded: 0,
    visionCacheHits: 0,
    prefixReusedTokens: 0,
    prefillTokens: 0,
    preprocess: 'none',
    visionStageMs: 0,
  };
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  const finish = (stoppedBy: DoneEvent['stoppedBy']): DoneEvent => {
    timings.generatedTokens = tokens.length;
    timings.prefillTokensPerSecond = timings.prefillMs > 0 ? (timings.prefillTokens * 1000) / timings.prefillMs : 0;
    timings.decodeTokensPerSecond = timings.decodeMs > 0 && tokens.length > 1 ? ((tokens.length - 1) * 1000) / timings.decodeMs : 0;
    const event: DoneEvent = { type: 'done', text: ctx.decode(tokens), tokens, stoppedBy, timings };
    if (o.returnLogits) event.logits = logits;
    return event;
  };

  const next = { ids: prompt.inputIds, types: prompt.tokenTypeIds, visualId: inputs.visualId };
  let reuse = o.reusePrefix === false ? 0 : reusablePrefix({ ...ctx.runner.contents(), visualId: ctx.cache.visualId }, next);
  if (reuse > 0 && !ctx.runner.keep(reuse)) reuse = 0;
  if (reuse === 0) ctx.runner.reset();
  // The cache is about to change: until the prefill succeeds its visual identity is unknown.
  ctx.cache.visualId = undefined;
  timings.prefixReusedTokens = reuse;
  timings.prefillTokens = prompt.inputIds.length - reuse;

  // A kept prefix holds every image token (reusablePrefix), so features are needed only from scratch.
  let features: Features | undefined;
  if (items.length > 0 && reuse === 0) {
    const promptTokens = prompt.inputIds.length;
    o.onEvent({ type: 'stage', stage: 'vision', promptTokens, done: 0, total: items.length });
    features = await ctx.features(items, inputs.poolSize, (done, total) => o.onEvent({ type: 'stage', stage: 'vision', promptTokens, done, total }));
    if (!features || o.isCancelled()) {
      features?.release();
      return finish('cancel');
    }
    timings.preprocessMs += features.stats.preprocessMs;
    timings.visionMs = features.stats.visionMs;
    timings.visionEncoded = features.stats.encoded;
    timings.visionCacheHits = features.stats.hits;
    timings.visionStageMs = features.stats.visionStageMs;
    timings.preprocess = features.stats.path;
  }

  o.onEvent({ type: 'stage', stage: 'prefill', promptTokens: prompt.inputIds.length });
  let t = performance.now();
  let step;
  try {
    step = await ctx.runner.step(prompt.inputIds.subarray(reuse), prompt.tokenTypeIds.subarray(reuse), features?.tensor, Boolean(o.returnLogits));
  } finally {
    features?.release();
  }
  ctx.cache.visualId = inputs.visualId;
  timings.prefillMs = performance.now() - t;
  timings.timeToFirstTokenMs = performance.now() - o.startedAt;

  o.onEvent({ type: 'stage', stage: 'decode' });
  const text = new TextStream(ctx.decode);
  const textType = [0];
  const single = [0];
  t = performance.now();
  for (;;) {
    tokens.push(step.next);
    if (step.logits && o.returnLogits) logits.push(step.logits);
    if (step.next === ctx.eosId) {
      timings.decodeMs = performance.now() - t;
      return finish('eos');
    }
    o.onEvent({ type: 'token', tokenId: step.next, text: text.push(step.next), generated: tokens.length });
    if (tokens.length >= o.maxNewTokens || ctx.runner.length >= ctx.runner.maxContext) {
      timings.decodeMs = performance.now() - t;
      return finish('max-tokens');
    }
    if (o.isCancelled()) {
      timings.decodeMs = performance.now() - t;
      return finish('cancel');
    }
    single[0] = o.forceTokens?.[tokens.length - 1] ?? step.next;
    step = await ctx.runner.step(single, textType, undefined, Boolean(o.returnLogits));
  }
}
