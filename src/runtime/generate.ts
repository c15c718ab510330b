// One answer: vision encoder → prefill of the whole prompt → greedy decode until <|im_end|>, the token
// limit or a cancel. Image features stay on the GPU between the two sessions; per decode step only
// the next token id (or the last logits row) comes back to the CPU.
import { VISION_INPUTS, VISION_OUTPUTS } from '../molmo2/onnx/io.ts';
import type { AskEvent, StageTimings } from './api-types.ts';
import type { DecoderRunner } from './decoder-runner.ts';
import type { ModelInputs } from './inputs.ts';
import { ort } from './ort.ts';

export interface GenerateContext {
  vision: ort.InferenceSession;
  runner: DecoderRunner;
  decode: (ids: number[]) => string;
  eosId: number;
  /** Resolves when the GPU finished the work submitted so far (so stage timings are real). */
  gpuIdle?: () => Promise<void>;
}

export interface GenerateOptions {
  maxNewTokens: number;
  preprocessMs: number;
  isCancelled: () => boolean;
  onEvent: (e: AskEvent) => void;
  /** Also return the logits that chose each token (diagnostics and tests). */
  returnLogits?: boolean;
}

export type DoneEvent = Extract<AskEvent, { type: 'done' }> & { logits?: Float32Array[] };

/** pixel_values + pooled_idx → image_features, left on the GPU for the decoder. */
export async function runVision(vision: ort.InferenceSession, inputs: ModelInputs): Promise<ort.Tensor> {
  const { prompt, pixelValues, numCrops } = inputs;
  const per = pixelValues.length / numCrops;
  const patches = vision.inputMetadata.find((m) => m.name === VISION_INPUTS.pixelValues);
  const patchCount = patches && patches.isTensor && typeof patches.shape[1] === 'number' ? patches.shape[1] : 729;
  const pooled = new BigInt64Array(prompt.pooledIdx.length);
  for (let i = 0; i < pooled.length; i++) pooled[i] = BigInt(prompt.pooledIdx[i]);
  const out = await vision.run({
    [VISION_INPUTS.pixelValues]: new ort.Tensor('float32', pixelValues, [numCrops, patchCount, per / patchCount]),
    [VISION_INPUTS.pooledIdx]: new ort.Tensor('int64', pooled, [prompt.pooledIdx.length / prompt.poolSize, prompt.poolSize]),
  });
  return out[VISION_OUTPUTS.imageFeatures];
}

export async function generate(ctx: GenerateContext, inputs: ModelInputs, o: GenerateOptions): Promise<DoneEvent> {
  const { prompt } = inputs;
  const timings: StageTimings = {
    preprocessMs: o.preprocessMs,
    visionMs: 0,
    prefillMs: 0,
    decodeMs: 0,
    promptTokens: prompt.inputIds.length,
    generatedTokens: 0,
    prefillTokensPerSecond: 0,
    decodeTokensPerSecond: 0,
  };
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  const finish = (stoppedBy: DoneEvent['stoppedBy']): DoneEvent => {
    timings.generatedTokens = tokens.length;
    timings.prefillTokensPerSecond = timings.prefillMs > 0 ? (timings.promptTokens * 1000) / timings.prefillMs : 0;
    timings.decodeTokensPerSecond = timings.decodeMs > 0 && tokens.length > 1 ? ((tokens.length - 1) * 1000) / timings.decodeMs : 0;
    const event: DoneEvent = { type: 'done', text: ctx.decode(tokens), tokens, stoppedBy, timings };
    if (o.returnLogits) event.logits = logits;
    return event;
  };

  let features: ort.Tensor | undefined;
  if (inputs.numCrops > 0) {
    o.onEvent({ type: 'stage', stage: 'vision', promptTokens: prompt.inputIds.length });
    const t = performance.now();
    features = await runVision(ctx.vision, inputs);
    // run() returns once the work is queued; wait for it so the vision time is not billed to prefill.
    await ctx.gpuIdle?.();
    timings.visionMs = performance.now() - t;
    if (o.isCancelled()) {
      features.dispose();
      return finish('cancel');
    }
  }

  o.onEvent({ type: 'stage', stage: 'prefill', promptTokens: prompt.inputIds.length });
  const tokenTypes = Array.from(prompt.tokenTypeIds);
  ctx.runner.reset();
  let t = performance.now();
  let step;
  try {
    step = await ctx.runner.step(prompt.inputIds, tokenTypes, features, Boolean(o.returnLogits));
  } finally {
    if (features?.location === 'gpu-buffer') features.dispose();
  }
  timings.prefillMs = performance.now() - t;

  o.onEvent({ type: 'stage', stage: 'decode' });
  t = performance.now();
  for (;;) {
    tokens.push(step.next);
    if (step.logits && o.returnLogits) logits.push(step.logits);
    if (step.next === ctx.eosId) {
      timings.decodeMs = performance.now() - t;
      return finish('eos');
    }
    o.onEvent({ type: 'token', tokenId: step.next, text: ctx.decode(tokens), generated: tokens.length });
    if (tokens.length >= o.maxNewTokens || ctx.runner.length >= ctx.runner.maxContext) {
      timings.decodeMs = performance.now() - t;
      return finish('max-tokens');
    }
    if (o.isCancelled()) {
      timings.decodeMs = performance.now() - t;
      return finish('cancel');
    }
    tokenTypes.push(0);
    step = await ctx.runner.step([step.next], tokenTypes, undefined, Boolean(o.returnLogits));
  }
}
