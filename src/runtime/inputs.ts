// Turns an ask request from the page (images or timed video frames, as RGBA or ImageBitmaps, + a
// question) into the model's inputs: the pictures are read here, the planning is visual-plan.ts's.
import type { AskRequest, ImageInput, RgbaImage } from './api-types.ts';
import type { AskShape } from './limits.ts';
import { InputError, planPictures, type Picture, type PlannedInputs, type PlanVisual, type PrepareOptions } from './visual-plan.ts';

export { allPixels, InputError, type PlannedInputs, type PrepareOptions, type VisualItem } from './visual-plan.ts';

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

/** A page image (RGBA or ImageBitmap) as a Picture: its size checked when read, its RGB made on demand. */
function pictureOf(image: ImageInput, key: string | undefined): Picture {
  return {
    get width() {
      return imageSize(image).width;
    },
    get height() {
      return imageSize(image).height;
    },
    key,
    rgb: () => toRgb(image).rgb,
  };
}

function imageSize(image: ImageInput): { width: number; height: number } {
  if (isBitmap(image)) {
    if (image.width === 0 || image.height === 0) throw new InputError('an image is empty (0 pixels); was its ImageBitmap already closed?');
    return { width: image.width, height: image.height };
  }
  return checkRgba(image);
}

/** The prompt and the visual items of a request, without touching pixels (cheap: checked before any work). */
export function planInputs(req: AskRequest, o: PrepareOptions): PlannedInputs {
  const visual = req.visual ?? { kind: 'none' };
  let planned: PlanVisual;
  if (visual.kind === 'images') {
    if (visual.images?.length && visual.keys && visual.keys.length !== visual.images.length) throw new InputError(`${visual.keys.length} image keys were given for ${visual.images.length} images`);
    planned = { kind: 'images', images: (visual.images ?? []).map((image, i) => pictureOf(image, visual.keys?.[i])) };
  } else if (visual.kind === 'video') {
    planned = { kind: 'video', frames: (visual.frames ?? []).map((f) => ({ picture: pictureOf(f.image, f.key), timestamp: f.timestamp })) };
  } else {
    planned = visual;
  }
  return planPictures(req.question, req.history, planned, o);
}

/** The AskShape of a request (what the limits depend on), read without touching pixels. */
export function shapeOf(req: AskRequest): AskShape {
  const v = req.visual ?? { kind: 'none' };
  const visual: AskShape['visual'] =
    v.kind === 'images' ? { kind: 'images', sizes: v.images.map(imageSize) } : v.kind === 'video' ? { kind: 'video', timestamps: v.frames.map((f) => f.timestamp) } : { kind: 'none' };
  return { question: req.question, history: req.history, visual };
}
