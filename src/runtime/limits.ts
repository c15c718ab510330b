// How much a question may ask of the loaded model on this GPU: the context cap (KV cache size and the
// largest prefill the adapter's buffers can hold), the frame cap, and the check that refuses a request
// before any preprocessing or vision work. Pure functions: the worker enforces them and the page can
// show the same numbers before sending (LoadedModel.limits carries everything the estimate needs).
import type { Molmo2Config, ProcessorSettings } from '../molmo2/config.ts';
import { planImage, planVideoFrame, type CropGeometry } from '../molmo2/image.ts';
import { conversationText, formatTimestamp, type ChatTurn } from '../molmo2/prompt.ts';

/** Tokens kept free for the answer when checking a prompt against the context. */
export const ANSWER_RESERVE_TOKENS = 256;
/** Question + chat-template allowance used for the advertised frame cap (bytes of a typical question). */
const TYPICAL_QUESTION_BYTES = 160;

export interface AskLimits {
  /** Tokens the KV cache holds (prompt + answer). */
  maxContext: number;
  /** Longest prompt accepted: min(maxContext − answer reserve, the largest prefill the GPU's buffers hold). */
  maxPromptTokens: number;
  /** Largest prefill (tokens in one run) the adapter's storage-buffer binding size allows. */
  maxPrefillTokens: number;
  /** Frames a video question may have (processor cap and context, for a typical question). */
  maxFrames: number;
  /** ViT crops one vision run may take (a video frame is one crop, an image 1 + rows·cols). */
  maxCropsPerVisionRun: number;
  /** What the prompt estimate needs. */
  settings: ProcessorSettings;
  geometry: CropGeometry;
}

/** The shape of a request: what the limits depend on (no pixels). */
export interface AskShape {
  question: string;
  history?: ChatTurn[];
  visual: { kind: 'none' } | { kind: 'images'; sizes: { width: number; height: number }[] } | { kind: 'video'; timestamps: number[] };
}

export interface LimitCheck {
  ok: boolean;
  /** Prompt tokens (exact when the worker counted them, else an upper-bound estimate). */
  promptTokens: number;
  maxPromptTokens: number;
  frames: number;
  maxFrames: number;
  /** Why the request is refused and what to do instead, in plain language. */
  message?: string;
}

export interface GpuBufferLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length;
const CHAT_SPECIALS = /<\|im_start\|>|<\|im_end\|>/g;

/** Tokens of chat-template text at most: one per special token, at most one per UTF-8 byte otherwise. */
function textTokensAtMost(text: string): number {
  const specials = text.match(CHAT_SPECIALS)?.length ?? 0;
  return specials + utf8Bytes(text.replace(CHAT_SPECIALS, ''));
}

/**
 * Largest prefill one decoder run can hold. Molmo2's prefill mask is a float32 bias with the query
 * heads folded into its rows: [n_rep·chunk, T] per chunk of `prefillChunk` query rows (the decoder's
 * manifest entry), or [n_rep·S, T] for a decoder converted before chunked prefill, so one mask grows
 * with S·T there and only with T here. It and the MLP's fused up|gate projection [S, 2·intermediate]
 * must each fit one storage binding.
 */
export function maxPrefillTokens(config: Molmo2Config, actBytes: number, gpu: GpuBufferLimits, prefillChunk?: number): number {
  const t = config.text;
  const binding = Math.min(gpu.maxStorageBufferBindingSize, gpu.maxBufferSize);
  const nRep = t.numHeads / t.numKvHeads;
  const byMask = prefillChunk ? Math.floor(binding / (4 * nRep * prefillChunk)) : Math.floor(Math.sqrt(binding / (4 * nRep)));
  const byMlp = Math.floor(binding / (2 * t.intermediateSize * actBytes));
  return Math.max(1, Math.min(byMask, byMlp));
}

/**
 * Crops per vision run: the ViT's attention probabilities [heads, P, P] (float32), its MLP activations
 * [P, intermediate] and the concatenated block outputs [P, layers·hidden] of every crop must fit one
 * storage binding.
 */
export function maxCropsPerVisionRun(config: Molmo2Config, actBytes: number, gpu: GpuBufferLimits): number {
  const v = config.vit;
  const P = (v.imageSize[0] / v.patchSize) * (v.imageSize[1] / v.patchSize);
  const perCrop = Math.max(v.numHeads * P * P * 4, P * v.intermediateSize * actBytes, P * config.adapter.vitLayers.length * v.hiddenSize * 4);
  return Math.max(1, Math.floor(Math.min(gpu.maxStorageBufferBindingSize, gpu.maxBufferSize) / perCrop));
}

/** Tokens of one video frame in the prompt, timestamp text included (upper bound for times < 10⁵ s). */
function frameTokens(settings: ProcessorSettings, geometry: CropGeometry): number {
  return planVideoFrame(settings, geometry).numTokens + utf8Bytes(' 99999.9 ');
}

export function askLimits(config: Molmo2Config, settings: ProcessorSettings, maxContext: number, actBytes: number, gpu: GpuBufferLimits, prefillChunk?: number): AskLimits {
  const geometry: CropGeometry = { patchSize: config.vit.patchSize, cropSize: config.vit.imageSize[0] };
  const prefill = maxPrefillTokens(config, actBytes, gpu, prefillChunk);
  const maxPromptTokens = Math.max(1, Math.min(maxContext - Math.min(ANSWER_RESERVE_TOKENS, Math.floor(maxContext / 4)), prefill));
  const base = 1 + textTokensAtMost(conversationText({ question: '' })) + TYPICAL_QUESTION_BYTES;
  const maxFrames = Math.max(0, Math.min(settings.maxFrames, Math.floor((maxPromptTokens - base) / frameTokens(settings, geometry))));
  return { maxContext, maxPromptTokens, maxPrefillTokens: prefill, maxFrames, maxCropsPerVisionRun: maxCropsPerVisionRun(config, actBytes, gpu), settings, geometry };
}

/**
 * Prompt tokens of a request without a tokenizer: exact for the visual blocks, an upper bound for the
 * text (byte-level BPE: every token covers at least one UTF-8 byte).
 */
export function estimatePromptTokens(shape: AskShape, limits: Pick<AskLimits, 'settings' | 'geometry'>): number {
  let n = 1 + textTokensAtMost(conversationText({ question: shape.question, history: shape.history }));
  const v = shape.visual;
  if (v.kind === 'images') {
    v.sizes.forEach((s, k) => {
      n += planImage(s.width, s.height, limits.settings, limits.geometry).numTokens;
      if (v.sizes.length > 1) n += utf8Bytes(`Image ${k + 1}`);
    });
  } else if (v.kind === 'video') {
    const block = planVideoFrame(limits.settings, limits.geometry).numTokens;
    v.timestamps.forEach((t, k) => {
      n += block + utf8Bytes(`${k > 0 ? ' ' : ''}${formatTimestamp(Math.max(0, t))} `);
    });
  }
  return n;
}

/**
 * Whether a request fits the loaded model on this GPU. `promptTokens` is the exact count when known
 * (the worker builds the prompt first); otherwise it is estimated from the shape.
 */
export function checkAskLimits(shape: AskShape, limits: AskLimits, promptTokens = estimatePromptTokens(shape, limits)): LimitCheck {
  const v = shape.visual;
  const frames = v.kind === 'video' ? v.timestamps.length : 0;
  const result: LimitCheck = { ok: true, promptTokens, maxPromptTokens: limits.maxPromptTokens, frames, maxFrames: limits.maxFrames };
  const refuse = (message: string): LimitCheck => ({ ...result, ok: false, message });
  if (v.kind === 'video' && frames > limits.settings.maxFrames) {
    return refuse(`${frames} frames were selected, but the model takes at most ${limits.settings.maxFrames} per question. Use fewer frames or a shorter range.`);
  }
  if (v.kind === 'images') {
    for (const [k, s] of v.sizes.entries()) {
      const crops = planImage(s.width, s.height, limits.settings, limits.geometry).numCrops;
      if (crops > limits.maxCropsPerVisionRun) {
        return refuse(
          `Image ${k + 1} (${s.width}×${s.height}) is split into ${crops} crops, but this GPU's buffers hold at most ` +
            `${limits.maxCropsPerVisionRun} crops in one vision run. Use a smaller image.`,
        );
      }
    }
  }
  if (promptTokens > limits.maxPromptTokens) {
    const why =
      limits.maxPromptTokens < limits.maxContext - ANSWER_RESERVE_TOKENS
        ? `this GPU's buffers allow a prompt of at most ${limits.maxPromptTokens} tokens`
        : `the model was loaded with a ${limits.maxContext}-token context, which leaves room for a prompt of ${limits.maxPromptTokens} tokens`;
    if (v.kind === 'video') {
      const perFrame = frames > 0 ? (promptTokens - estimatePromptTokens({ ...shape, visual: { kind: 'none' } }, limits)) / frames : 1;
      const fit = Math.max(0, Math.floor(frames - (promptTokens - limits.maxPromptTokens) / Math.max(1, perFrame)));
      return refuse(
        `This question needs about ${promptTokens} prompt tokens for ${frames} frames, but ${why}. ` +
          `Use at most ${Math.min(fit, limits.maxFrames)} frames (a shorter range or a lower frame cap).`,
      );
    }
    if (v.kind === 'images') return refuse(`This question needs about ${promptTokens} prompt tokens for ${v.sizes.length} image(s), but ${why}. Use fewer or smaller images.`);
    return refuse(`This question needs about ${promptTokens} prompt tokens, but ${why}. Shorten the question or the conversation.`);
  }
  return result;
}
