// Turns an ask request (images or timed video frames + a question) into the model's inputs with the
// platform-free preprocessing of src/molmo2: pixel values of every crop/frame, the prompt's token ids,
// token types and pooling indices.
import type { Molmo2Config, ProcessorSettings } from '../molmo2/config.ts';
import { cropLength, imagePixelValues, planImage, videoFramePixelValues, type CropGeometry } from '../molmo2/image.ts';
import { buildPrompt, type BuiltPrompt, type VisualInput } from '../molmo2/prompt.ts';
import type { TextTokenizer } from '../molmo2/tokenizer.ts';
import type { AskRequest, ImageInput, RgbaImage } from './api-types.ts';

export interface ModelInputs {
  prompt: BuiltPrompt;
  /** [numCrops, patches, patchDim] of all crops/frames in prompt order (empty without visuals). */
  pixelValues: Float32Array;
  numCrops: number;
}

export class InputError extends Error {}

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
  /** Longest prompt the cache can take (leaving room for at least one answer token). */
  maxPromptTokens: number;
}

export function prepareInputs(req: AskRequest, o: PrepareOptions): ModelInputs {
  if (typeof req.question !== 'string' || !req.question.trim()) throw new InputError('the question is empty');
  const geometry: CropGeometry = { patchSize: o.config.vit.patchSize, cropSize: o.config.vit.imageSize[0] };
  const patches = (geometry.cropSize / geometry.patchSize) ** 2;
  const per = cropLength(geometry);
  const visual = req.visual ?? { kind: 'none' };
  let visualInput: VisualInput;
  let pixelValues: Float32Array;
  let numCrops = 0;
  if (visual.kind === 'images') {
    if (!visual.images?.length) throw new InputError('no images were given');
    const decoded = visual.images.map(toRgb);
    const plans = decoded.map((d) => planImage(d.width, d.height, o.settings, geometry));
    numCrops = plans.reduce((s, p) => s + p.numCrops, 0);
    pixelValues = new Float32Array(numCrops * per);
    let at = 0;
    decoded.forEach((d, i) => {
      const px = imagePixelValues(d.rgb, d.width, d.height, o.settings, geometry, plans[i]);
      pixelValues.set(px, at);
      at += px.length;
    });
    visualInput = { kind: 'images', plans };
  } else if (visual.kind === 'video') {
    const frames = visual.frames ?? [];
    if (frames.length === 0) throw new InputError('no video frames were given');
    if (frames.length > o.settings.maxFrames) throw new InputError(`${frames.length} frames were given; the model takes at most ${o.settings.maxFrames}`);
    for (let i = 0; i < frames.length; i++) {
      const t = frames[i].timestamp;
      if (!Number.isFinite(t) || t < 0) throw new InputError(`frame ${i + 1} has an invalid timestamp ${t}`);
      if (i > 0 && t <= frames[i - 1].timestamp) throw new InputError('video frames must be in increasing time order');
    }
    numCrops = frames.length;
    pixelValues = new Float32Array(numCrops * per);
    frames.forEach((f, i) => {
      const d = toRgb(f.image);
      pixelValues.set(videoFramePixelValues(d.rgb, d.width, d.height, o.settings, geometry), i * per);
    });
    visualInput = { kind: 'video', timestamps: frames.map((f) => f.timestamp) };
  } else if (visual.kind === 'none') {
    pixelValues = new Float32Array(0);
    visualInput = { kind: 'none' };
  } else {
    throw new InputError(`unknown visual input kind ${JSON.stringify((visual as { kind: unknown }).kind)}`);
  }
  const prompt = buildPrompt({
    tokenizer: o.tokenizer,
    tokens: o.config.tokens,
    visual: visualInput,
    conversation: { question: req.question, history: req.history },
    settings: o.settings,
    patchesPerCrop: patches,
  });
  if (prompt.inputIds.length > o.maxPromptTokens) {
    throw new InputError(
      `the prompt has ${prompt.inputIds.length} tokens but the model was loaded with room for ${o.maxPromptTokens}; ` +
        (visual.kind === 'video' ? 'use fewer frames or a shorter range' : 'use fewer or smaller images') +
        ', or load the model with a larger context.',
    );
  }
  if (prompt.numCrops !== numCrops) throw new Error(`internal: the prompt expects ${prompt.numCrops} crops, ${numCrops} were prepared`);
  return { prompt, pixelValues, numCrops };
}
