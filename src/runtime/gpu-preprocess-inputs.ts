// The runtime's entry to GPU preprocessing: a preprocessor on onnxruntime's device that has passed a
// self-check against the CPU path, and pixel_values of chosen items of an ask request as a GPU tensor
// for the vision session. Every failure returns undefined so the caller keeps the CPU path.
import type { ProcessorSettings } from '../molmo2/config.ts';
import { videoFramePixelValues, type CropGeometry } from '../molmo2/image.ts';
import type { AskRequest } from './api-types.ts';
import { GpuPreprocessor, gpuPreprocessAvailable, type GpuPixels, type SourceMethod } from './gpu-preprocess.ts';
import type { GpuImageSource } from './gpu-preprocess-source.ts';
import { ort } from './ort.ts';

export interface GpuPixelTensor {
  /** pixel_values [numCrops, patches, patchDim] on the GPU; dispose() frees its buffer. */
  tensor: ort.Tensor;
  numCrops: number;
  methods: SourceMethod[];
}

export interface SelfCheck {
  /** Values of a test frame that differ from the CPU path, and the largest difference. */
  differing: number;
  maxAbsDiff: number;
}

/** Largest accepted difference from the CPU path: one uint8 level after normalisation. */
const ONE_LEVEL = 2 / 255 + 1e-6;

/** A synthetic RGBA frame with gradients and noise, so the blends hit many fractional values. */
function checkImage(w: number, h: number): { rgba: Uint8Array; rgb: Uint8Array } {
  const rgba = new Uint8Array(w * h * 4);
  const rgb = new Uint8Array(w * h * 3);
  let s = 12345;
  for (let p = 0; p < w * h; p++) {
    for (let c = 0; c < 3; c++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const v = ((p % w) * (3 + c) + Math.floor(p / w) * 5 + (s >>> 27)) & 255;
      rgba[p * 4 + c] = v;
      rgb[p * 3 + c] = v;
    }
    rgba[p * 4 + 3] = 255;
  }
  return { rgba, rgb };
}

/** Runs one odd-sized frame through both paths on this device. */
export async function selfCheck(pre: GpuPreprocessor, settings: ProcessorSettings, geometry: CropGeometry): Promise<SelfCheck> {
  const [w, h] = [173, 97];
  const { rgba, rgb } = checkImage(w, h);
  const px = await pre.videoFrames([{ width: w, height: h, data: rgba }], settings, geometry);
  try {
    const gpu = await pre.read(px);
    const cpu = videoFramePixelValues(rgb, w, h, settings, geometry);
    let differing = 0;
    let maxAbsDiff = 0;
    for (let i = 0; i < cpu.length; i++) {
      const d = Math.abs(gpu[i] - cpu[i]);
      if (d !== 0) differing++;
      if (!(d <= maxAbsDiff)) maxAbsDiff = d; // NaN sticks
    }
    return { differing, maxAbsDiff };
  } finally {
    px.buffer.destroy();
  }
}

export interface CreateOptions {
  /**
   * Use it on a fallback (software) adapter too. Off by default: SwiftShader runs the shader on the
   * CPU and its copyExternalImageToTexture is slow, so the CPU path is several times faster there.
   */
  allowFallbackAdapter?: boolean;
}

/**
 * A preprocessor on `device` (onnxruntime's, from ortDevice()) when the pass compiles and its self-check
 * stays within one uint8 level of the CPU path; otherwise undefined (use the CPU path).
 */
export async function createGpuPreprocessor(
  device: GPUDevice | undefined,
  settings: ProcessorSettings,
  geometry: CropGeometry,
  opts: CreateOptions = {},
): Promise<{ pre: GpuPreprocessor; check: SelfCheck } | undefined> {
  if (!gpuPreprocessAvailable(device)) return undefined;
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  if (info?.isFallbackAdapter && !opts.allowFallbackAdapter) return undefined;
  let pre: GpuPreprocessor | undefined;
  try {
    pre = await GpuPreprocessor.create(device);
    const check = await selfCheck(pre, settings, geometry);
    if (!(check.maxAbsDiff <= ONE_LEVEL)) throw new Error(`self-check differs from the CPU path by ${check.maxAbsDiff}`);
    return { pre, check };
  } catch (e) {
    pre?.dispose();
    console.warn(`GPU preprocessing is off, the CPU path is used: ${(e as Error).message}`);
    return undefined;
  }
}

/** The sources of the request's items `indices` (images or video frames, in prompt order). */
function itemSources(req: AskRequest, indices: number[]): { kind: 'images' | 'video'; sources: GpuImageSource[] } | undefined {
  const v = req.visual;
  if (v?.kind === 'images') return { kind: 'images', sources: indices.map((i) => v.images[i]) };
  if (v?.kind === 'video') return { kind: 'video', sources: indices.map((i) => v.frames[i].image) };
  return undefined;
}

export function toTensor(px: GpuPixels): ort.Tensor {
  return ort.Tensor.fromGpuBuffer(px.buffer, { dataType: 'float32', dims: px.dims, dispose: () => px.buffer.destroy() });
}

/**
 * pixel_values of the items `indices` of `req` (the items whose vision features are needed), made on
 * the GPU; undefined when `pre` is undefined or anything fails, so the caller uses the CPU path.
 */
export async function gpuItemPixels(
  pre: GpuPreprocessor | undefined,
  req: AskRequest,
  indices: number[],
  settings: ProcessorSettings,
  geometry: CropGeometry,
): Promise<GpuPixelTensor | undefined> {
  if (!pre || indices.length === 0) return undefined;
  const items = itemSources(req, indices);
  if (!items || items.sources.some((s) => s === undefined)) return undefined;
  try {
    const px =
      items.kind === 'images'
        ? await pre.images(items.sources, settings, geometry)
        : await pre.videoFrames(items.sources, settings, geometry);
    return { tensor: toTensor(px), numCrops: px.numCrops, methods: px.methods };
  } catch (e) {
    console.warn(`GPU preprocessing failed, using the CPU path: ${(e as Error).message}`);
    return undefined;
  }
}
