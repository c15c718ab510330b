// Turns an ask request (images or timed video frames + a question) into the model's inputs with the
// platform-free preprocessing of src/molmo2: first the prompt (token ids, token types, pooling) and one
// item per frame/image without touching pixels, so limits and caches are checked before any work;
// then, only for the items whose features are not cached, their pixel values.
import type { Molmo2Config, ProcessorSettings } from '../molmo2/config.ts';
import { imagePixelValues, planImage, planVideoFrame, videoFramePixelValues, type CropGeometry } from '../molmo2/image.ts';
import { buildPrompt, PromptTextError, type BuiltPrompt, type ChatTemplate, type VisualInput } from '../molmo2/prompt.ts';
import type { TextTokenizer } from '../molmo2/tokenizer.ts';
import type { AskRequest, ImageInput, RgbaImage } from './api-types.ts';
import { WorkerError } from '../../workers/worker-error.ts';
import type { AskShape } from './limits.ts';

/** A request that cannot be used as given (the message says why). */
export class InputError extends WorkerError {
  constructor(message: string) {
    super('bad-input', message);
  }
}

/** Packed RGB bytes of an RGBA image or an ImageBitmap (drawn on an OffscreenCanvas). */
export function toRgb(image: ImageInput): { rgb: Uint8Array; width: number; height: number } {
  const rgba = isBitmap(image) ? bitmapPixels(image) : checkRgba(image);
  const n = rgba.width * rgba.height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = rgba.data[4 * i];
    rgb[3 * i + 1] = rgba.data[4 * i + 1];
    rgb[3 * i + 2] = rgba.data[4 * i + 2];
  }
  return { rgb, width: rgba.width, height: rgba.height };
}

function isBitmap(x: ImageInput): x is ImageBitmap {
  return typeof ImageBitmap !== 'undefined' && x instanceof ImageBitmap;
}

function checkRgba(img: RgbaImage): RgbaImage {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0) {
    throw new InputError(`an image must have a positive integer size, got ${img.width}×${img.height}`);
  }
  if (!img.data || img.data.length !== img.width * img.height * 4) {
    throw new InputError(`an image of ${img.width}×${img.height} needs ${img.width * img.height * 4} RGBA bytes, got ${img.data?.length ?? 0}`);
  }
  return img;
}

function bitmapPixels(bitmap: ImageBitmap): RgbaImage {
  if (bitmap.width === 0 || bitmap.height === 0) throw new InputError('an image is empty (0 pixels); was its ImageBitmap already closed?');
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new InputError('could not read the image pixels (no 2D canvas in this browser)');
  ctx.drawImage(bitmap, 0, 0);
  const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  return { width: bitmap.width, height: bitmap.height, data };
}

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

function imageSize(image: ImageInput): { width: number; height: number } {
  if (isBitmap(image)) {
    if (image.width === 0 || image.height === 0) throw new InputError('an image is empty (0 pixels); was its ImageBitmap already closed?');
    return { width: image.width, height: image.height };
  }
  return checkRgba(image);
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

/** The prompt and the visual items of a request, without touching pixels (cheap: checked before any work). */
export function planInputs(req: AskRequest, o: PrepareOptions): PlannedInputs {
  if (typeof req.question !== 'string' || !req.question.trim()) throw new InputError('the question is empty');
  const geometry: CropGeometry = { patchSize: o.config.vit.patchSize, cropSize: o.config.vit.imageSize[0] };
  const patches = (geometry.cropSize / geometry.patchSize) ** 2;
  const visual = req.visual ?? { kind: 'none' };
  let visualInput: VisualInput;
  let items: VisualItem[] = [];
  let poolSize = 0;
  if (visual.kind === 'images') {
    if (!visual.images?.length) throw new InputError('no images were given');
    if (visual.keys && visual.keys.length !== visual.images.length) throw new InputError(`${visual.keys.length} image keys were given for ${visual.images.length} images`);
    const plans = visual.images.map((image) => {
      const { width, height } = imageSize(image);
      return planImage(width, height, o.settings, geometry);
    });
    items = visual.images.map((image, i) => ({
      key: visual.keys?.[i],
      width: plans[i].width,
      height: plans[i].height,
      crops: plans[i].numCrops,
      pooledIdx: plans[i].pooledIdx,
      rows: plans[i].pooledShape[0],
      pixels: () => {
        const d = toRgb(image);
        return imagePixelValues(d.rgb, d.width, d.height, o.settings, geometry, plans[i]);
      },
    }));
    poolSize = plans[0].pooledShape[1];
    visualInput = { kind: 'images', plans };
  } else if (visual.kind === 'video') {
    const frames = visual.frames ?? [];
    validateFrames(frames, o.settings.maxFrames);
    const frame = planVideoFrame(o.settings, geometry);
    items = frames.map((f) => {
      const { width, height } = imageSize(f.image);
      return {
        key: f.key,
        width,
        height,
        crops: 1,
        pooledIdx: frame.pooledIdx,
        rows: frame.pooledShape[0],
        pixels: () => {
          const d = toRgb(f.image);
          return videoFramePixelValues(d.rgb, d.width, d.height, o.settings, geometry);
        },
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
      conversation: { question: req.question, history: req.history },
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

/** The AskShape of a request (what the limits depend on), read without touching pixels. */
export function shapeOf(req: AskRequest): AskShape {
  const v = req.visual ?? { kind: 'none' };
  const visual: AskShape['visual'] =
    v.kind === 'images' ? { kind: 'images', sizes: v.images.map(imageSize) } : v.kind === 'video' ? { kind: 'video', timestamps: v.frames.map((f) => f.timestamp) } : { kind: 'none' };
  return { question: req.question, history: req.history, visual };
}

/** Pixel values of every item in prompt order (tests and tools; the runtime computes only missing items). */
export function allPixels(items: VisualItem[]): Float32Array {
  const parts = items.map((it) => it.pixels());
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
