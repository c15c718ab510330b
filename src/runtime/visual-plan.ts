// A question and its pictures (images, or timed video frames) → the model's inputs with the
// platform-free preprocessing of src/molmo2: first the prompt (token ids, token types, pooling) and
// one item per frame/image without touching pixels, so limits and caches are checked before any work;
// then, only for the items whose features are needed, their pixel values. No browser types: the
// inference worker (inputs.ts) and the batch tool's local backend both plan through here.
import type { ChatTurn } from '../molmo2/chat-template.ts';
import type { Molmo2Config, ProcessorSettings } from '../molmo2/config.ts';
import { imagePixelValues, planImage, planVideoFrame, videoFramePixelValues, type CropGeometry } from '../molmo2/image.ts';
import { buildPrompt, PromptTextError, type BuiltPrompt, type ChatTemplate, type VisualInput } from '../molmo2/prompt.ts';
import type { TextTokenizer } from '../molmo2/tokenizer.ts';
import { WorkerError } from '../../workers/worker-error.ts';

/** A request that cannot be used as given (the message says why). */
export class InputError extends WorkerError {
  constructor(message: string) {
    super('bad-input', message);
  }
}

/** One picture: its size (read first, cheaply) and its packed RGB bytes, made only when needed. */
export interface Picture {
  readonly width: number;
  readonly height: number;
  /** The caller's stable identity of these pixels (feature-cache key), if any. */
  readonly key?: string;
  rgb(): Uint8Array;
}

export type PlanVisual = { kind: 'none' } | { kind: 'images'; images: Picture[] } | { kind: 'video'; frames: { picture: Picture; timestamp: number }[] };

export interface PrepareOptions {
  config: Molmo2Config;
  settings: ProcessorSettings;
  tokenizer: TextTokenizer;
  /** The loaded checkpoint's chat template. */
  chatTemplate: ChatTemplate;
}

/** One frame (video) or image (images) of a request: its crops and pooling, pixels computed on demand. */
export interface VisualItem {
  /** The page's stable identity of these pixels (AskVisual keys), if given. */
  key?: string;
  /** Image size in pixels (part of the feature-cache key: the crops depend on it). */
  width: number;
  height: number;
  /** ViT crops of this item (1 for a video frame, 1 + rows·cols for an image). */
  crops: number;
  /** [rows, poolSize] pooling indices into this item's own crops (−1 = padding). */
  pooledIdx: Int32Array;
  /** Feature rows the item contributes (its <im_patch> tokens). */
  rows: number;
  /** pixel_values [crops, patches, patchDim]: the costly part of preprocessing, done only when the features are needed. */
  pixels(): Float32Array;
}

export interface PlannedInputs {
  prompt: BuiltPrompt;
  items: VisualItem[];
  /** Pooling window size of the items (4 for images, 9 for video frames). */
  poolSize: number;
  /** Identity of the whole visual input when every item has a key (prefix reuse needs it); '' without visuals. */
  visualId?: string;
}

function validateFrames(frames: { timestamp: number }[], maxFrames: number): void {
  if (frames.length === 0) throw new InputError('no video frames were given');
  if (frames.length > maxFrames) throw new InputError(`${frames.length} frames were given; the model takes at most ${maxFrames}`);
  for (let i = 0; i < frames.length; i++) {
    const t = frames[i].timestamp;
    if (!Number.isFinite(t) || t < 0) throw new InputError(`frame ${i + 1} has an invalid timestamp ${t}`);
    if (i > 0 && t <= frames[i - 1].timestamp) throw new InputError('video frames must be in increasing time order');
  }
}

/** The prompt and the visual items of a question, without touching pixels (cheap: checked before any work). */
export function planPictures(question: string, history: ChatTurn[] | undefined, visual: PlanVisual, o: PrepareOptions): PlannedInputs {
  if (typeof question !== 'string' || !question.trim()) throw new InputError('the question is empty');
  const geometry: CropGeometry = { patchSize: o.config.vit.patchSize, cropSize: o.config.vit.imageSize[0] };
  const patches = (geometry.cropSize / geometry.patchSize) ** 2;
  let visualInput: VisualInput;
  let items: VisualItem[] = [];
  let poolSize = 0;
  if (visual.kind === 'images') {
    if (!visual.images?.length) throw new InputError('no images were given');
    const plans = visual.images.map((image) => planImage(image.width, image.height, o.settings, geometry));
    items = visual.images.map((image, i) => ({
      key: image.key,
      width: plans[i].width,
      height: plans[i].height,
      crops: plans[i].numCrops,
      pooledIdx: plans[i].pooledIdx,
      rows: plans[i].pooledShape[0],
      pixels: () => imagePixelValues(image.rgb(), image.width, image.height, o.settings, geometry, plans[i]),
    }));
    poolSize = plans[0].pooledShape[1];
    visualInput = { kind: 'images', plans };
  } else if (visual.kind === 'video') {
    const frames = visual.frames ?? [];
    validateFrames(frames, o.settings.maxFrames);
    const frame = planVideoFrame(o.settings, geometry);
    items = frames.map(({ picture }) => {
      const { width, height } = picture;
      return {
        key: picture.key,
        width,
        height,
        crops: 1,
        pooledIdx: frame.pooledIdx,
        rows: frame.pooledShape[0],
        pixels: () => videoFramePixelValues(picture.rgb(), width, height, o.settings, geometry),
      };
    });
    poolSize = frame.pooledShape[1];
    visualInput = { kind: 'video', timestamps: frames.map((f) => f.timestamp), frame };
  } else if (visual.kind === 'none') {
    visualInput = { kind: 'none' };
  } else {
    throw new InputError(`unknown visual input kind ${JSON.stringify((visual as { kind: unknown }).kind)}`);
  }
  let prompt: BuiltPrompt;
  try {
    prompt = buildPrompt({
      tokenizer: o.tokenizer,
      chatTemplate: o.chatTemplate,
      tokens: o.config.tokens,
      visual: visualInput,
      conversation: { question, history },
      settings: o.settings,
      patchesPerCrop: patches,
    });
  } catch (e) {
    throw e instanceof PromptTextError ? new InputError(e.message) : e;
  }
  const crops = items.reduce((n, it) => n + it.crops, 0);
  if (prompt.numCrops !== crops) throw new Error(`internal: the prompt expects ${prompt.numCrops} crops, the request has ${crops}`);
  const keyed = items.every((it) => typeof it.key === 'string' && it.key.length > 0);
  const visualId = items.length === 0 ? '' : keyed ? JSON.stringify([visual.kind, ...items.map((it) => `${it.key}|${it.width}x${it.height}`)]) : undefined;
  return { prompt, items, poolSize, visualId };
}

/** Pixel values of every item in prompt order (tests and tools; the runtime computes only missing items). */
export function allPixels(items: VisualItem[]): Float32Array {
  return concatFloat32(items.map((it) => it.pixels()));
}

/** The arrays one after the other, in one array. */
export function concatFloat32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Consecutive runs of items whose crops fit one vision run (an item is never split). */
export function visionBatches(items: { crops: number }[], maxCrops: number): number[][] {
  const batches: number[][] = [];
  let cur: number[] = [];
  let crops = 0;
  items.forEach((it, i) => {
    if (cur.length > 0 && crops + it.crops > maxCrops) {
      batches.push(cur);
      cur = [];
      crops = 0;
    }
    cur.push(i);
    crops += it.crops;
  });
  if (cur.length) batches.push(cur);
  return batches;
}

/** pooled_idx of one vision run of the items `members`: each item's indices offset into the run's crops (−1 = padding stays). */
export function runPooledIdx(items: VisualItem[], members: number[], patchesPerCrop: number): number[] {
  const pooled: number[] = [];
  let cropAt = 0;
  for (const i of members) {
    const offset = cropAt * patchesPerCrop;
    for (const v of items[i].pooledIdx) pooled.push(v >= 0 ? v + offset : -1);
    cropAt += items[i].crops;
  }
  return pooled;
}
