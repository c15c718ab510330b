// Image and video-frame preprocessing of Molmo2: stretch-resize, overlapping-crop tiling, patch layout,
// normalisation and the pooling indices that map each <im_patch> token to its ViT patches.
// Platform-free: pixels come in as packed RGB bytes (row-major, 3 bytes per pixel).
import { RELEASED_PROCESSOR_SETTINGS, type ProcessorSettings } from './config.ts';

/** Crop geometry of the ViT (released: 378-px crops of 14-px patches → 27×27 = 729 patches). */
export interface CropGeometry {
  patchSize: number;
  cropSize: number;
}

export const RELEASED_GEOMETRY: CropGeometry = { patchSize: 14, cropSize: 378 };

const f32 = Math.fround;

/**
 * a·b + c rounded once to float32, like a compiler-contracted fused multiply-add on float32 operands:
 * the product of two float32 values is exact in a double, so only the final rounding matters.
 */
function fmaF32(a: number, b: number, c: number): number {
  return f32(a * b + c);
}

// ---------------------------------------------------------------------------------------------
// Resize
// ---------------------------------------------------------------------------------------------

export interface AxisTaps {
  i0: Int32Array;
  i1: Int32Array;
  w0: Float32Array;
  w1: Float32Array;
}

/**
 * Source taps and weights along one axis, as PyTorch's CPU upsample kernel computes them in float32
 * (`area_pixel_compute_source_index` + `guard_index_and_lambda`, align_corners=false): half-pixel
 * centres, negative source coordinates clamped to 0, the second tap clamped at the last pixel.
 * `scale·(o+0.5) − 0.5` is one fused multiply-add in PyTorch's x86-64 builds.
 */
export function axisTaps(inSize: number, outSize: number): AxisTaps {
  const t: AxisTaps = {
    i0: new Int32Array(outSize),
    i1: new Int32Array(outSize),
    w0: new Float32Array(outSize),
    w1: new Float32Array(outSize),
  };
  const scale = f32(inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    if (inSize === outSize) {
      t.i0[o] = t.i1[o] = o;
      t.w0[o] = 1;
      t.w1[o] = 0;
      continue;
    }
    let src = fmaF32(scale, o + 0.5, -0.5);
    if (src < 0) src = 0;
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const lambda = Math.min(Math.max(f32(src - i0), 0), 1);
    t.i0[o] = i0;
    t.i1[o] = i0 < inSize - 1 ? i0 + 1 : i0;
    t.w1[o] = lambda;
    t.w0[o] = f32(1 - lambda);
  }
  return t;
}

/** Round half to even, as torch.round does. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function checkImage(src: Uint8Array, w: number, h: number, what = 'image'): void {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w <= 0 || h <= 0) {
    throw new Error(`${what} size must be positive integers, got ${w}×${h}`);
  }
  if (src.length !== w * h * 3) {
    throw new Error(`${what} of ${w}×${h} needs ${w * h * 3} RGB bytes, got ${src.length}`);
  }
}

/**
 * Bilinear resize of packed RGB bytes, matching `torchvision.transforms.Resize(size, BILINEAR,
 * antialias=False)` on a uint8 CHW tensor as Molmo2's processor calls it: torchvision's v1 tensor
 * path casts uint8 → float32, runs `interpolate(mode="bilinear", align_corners=False)` and
 * `torch.round`s (half to even) back to uint8; torch's native uint8 kernel is not used there.
 *
 * The float32 arithmetic is that of PyTorch's generic separable CPU kernel as its x86-64 builds
 * compile it (what runs for 3-channel images with more than one thread): each of the two source
 * rows is blended horizontally as fma(a, wa, b·wb), then the two results vertically the same way.
 * This reproduces torch 2.14 / torchvision 0.29 bit for bit on the images we compared. PyTorch with
 * a single thread uses its channels-last kernel (one 4-term sum) instead, which moves a few values
 * lying on a .5 boundary by ±1.
 */
export function resizeBilinearU8(src: Uint8Array, w: number, h: number, outW: number, outH: number): Uint8Array {
  checkImage(src, w, h);
  if (!Number.isInteger(outW) || !Number.isInteger(outH) || outW <= 0 || outH <= 0) {
    throw new Error(`resize target must be positive integers, got ${outW}×${outH}`);
  }
  const out = new Uint8Array(outW * outH * 3);
  if (outW === w && outH === h) {
    out.set(src);
    return out;
  }
  const xs = axisTaps(w, outW);
  const ys = axisTaps(h, outH);
  for (let oy = 0; oy < outH; oy++) {
    const row0 = ys.i0[oy] * w * 3;
    const row1 = ys.i1[oy] * w * 3;
    const wy0 = ys.w0[oy];
    const wy1 = ys.w1[oy];
    for (let ox = 0; ox < outW; ox++) {
      const c0 = xs.i0[ox] * 3;
      const c1 = xs.i1[ox] * 3;
      const wx0 = xs.w0[ox];
      const wx1 = xs.w1[ox];
      const o = (oy * outW + ox) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const top = fmaF32(src[row0 + c0 + ch], wx0, f32(src[row0 + c1 + ch] * wx1));
        const bottom = fmaF32(src[row1 + c0 + ch], wx0, f32(src[row1 + c1 + ch] * wx1));
        const v = fmaF32(top, wy0, f32(bottom * wy1));
        out[o + ch] = Math.min(255, Math.max(0, roundHalfEven(v)));
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tiling and pooling indices
// ---------------------------------------------------------------------------------------------

export interface CropParams {
  patchesPerCrop: number; // 27
  windowPatches: number; // 19: crop minus both margins
  windowPx: number; // 266
  marginPx: number; // 112: both margins
  marginFirst: number; // 4
  marginLast: number; // 4
}

export function cropParams(settings: ProcessorSettings, g: CropGeometry): CropParams {
  if (g.cropSize % g.patchSize !== 0) throw new Error(`crop size ${g.cropSize} is not a multiple of patch size ${g.patchSize}`);
  const [marginFirst, marginLast] = settings.overlapMargins;
  const patchesPerCrop = g.cropSize / g.patchSize;
  const windowPatches = patchesPerCrop - marginFirst - marginLast;
  if (windowPatches <= 0) throw new Error(`overlap margins ${marginFirst}+${marginLast} leave no crop window`);
  return {
    patchesPerCrop,
    windowPatches,
    windowPx: windowPatches * g.patchSize,
    marginPx: (marginFirst + marginLast) * g.patchSize,
    marginFirst,
    marginLast,
  };
}

/**
 * Chooses the crop grid [rows, cols] for an image whose size *without* the overlap margins is
 * `height` × `width` (either may be ≤ 0 for tiny images). Scales are compared in float32, candidates
 * are ordered by (rows·cols, rows) and the first one wins ties: the least upscaling that fits, or the
 * least downscaling when every grid needs downscaling.
 */
export function selectTiling(height: number, width: number, windowPx: number, maxCrops: number): [number, number] {
  const tilings: [number, number][] = [];
  for (let i = 1; i <= maxCrops; i++) for (let j = 1; j <= maxCrops; j++) if (i * j <= maxCrops) tilings.push([i, j]);
  tilings.sort((a, b) => a[0] * a[1] - b[0] * b[1] || a[0] - b[0]);
  const h = f32(height);
  const w = f32(width);
  // x / 0 = +Infinity (and a negative size gives a negative scale), exactly as numpy float32 does.
  const scales = tilings.map(([i, j]) => Math.min(f32(f32(i * windowPx) / h), f32(f32(j * windowPx) / w)));
  let best = 0;
  if (scales.every((s) => s < 1)) {
    for (let k = 1; k < scales.length; k++) if (scales[k] > scales[best]) best = k;
  } else {
    const cost = scales.map((s) => (s < 1 ? 1e10 : s));
    for (let k = 1; k < cost.length; k++) if (cost[k] < cost[best]) best = k;
  }
  return tilings[best];
}

/**
 * Groups a [h, w] patch-index map into pool windows: pads with −1 to multiples of the pool size
 * (the odd row/column goes to the bottom/right), then lists each window's indices (dy, dx) row-major.
 * Returns the pooled grid size and the [gh·gw, poolH·poolW] indices.
 */
export function poolIndexMap(
  map: Int32Array,
  h: number,
  w: number,
  poolH: number,
  poolW: number,
): { grid: [number, number]; idx: Int32Array } {
  const padH = poolH * Math.ceil(h / poolH) - h;
  const padW = poolW * Math.ceil(w / poolW) - w;
  const top = Math.floor(padH / 2);
  const left = Math.floor(padW / 2);
  const gh = (h + padH) / poolH;
  const gw = (w + padW) / poolW;
  const P = poolH * poolW;
  const idx = new Int32Array(gh * gw * P);
  let k = 0;
  for (let gy = 0; gy < gh; gy++) {
    for (let gx = 0; gx < gw; gx++) {
      for (let dy = 0; dy < poolH; dy++) {
        for (let dx = 0; dx < poolW; dx++) {
          const y = gy * poolH + dy - top;
          const x = gx * poolW + dx - left;
          idx[k++] = y >= 0 && y < h && x >= 0 && x < w ? map[y * w + x] : -1;
        }
      }
    }
  }
  return { grid: [gh, gw], idx };
}

/**
 * Patch-index map of the hi-res image: for each patch of the resized image, the row of the crop
 * patch it is taken from, counting crops row-major from 0 (margins of inner crop edges dropped).
 */
function hiResPatchMap(rows: number, cols: number, p: CropParams): { map: Int32Array; h: number; w: number } {
  const n = p.patchesPerCrop;
  const h = rows * p.windowPatches + p.marginFirst + p.marginLast;
  const w = cols * p.windowPatches + p.marginFirst + p.marginLast;
  const map = new Int32Array(h * w);
  let k = 0;
  // Walk the resized image row by row through the crops that cover it; a crop patch is kept unless
  // it lies in a margin facing a neighbouring crop.
  for (let r = 0; r < rows; r++) {
    for (let y = 0; y < n; y++) {
      if (r > 0 && y < p.marginFirst) continue;
      if (r < rows - 1 && y >= n - p.marginLast) continue;
      for (let c = 0; c < cols; c++) {
        for (let x = 0; x < n; x++) {
          if (c > 0 && x < p.marginFirst) continue;
          if (c < cols - 1 && x >= n - p.marginLast) continue;
          map[k++] = (r * cols + c) * n * n + y * n + x;
        }
      }
    }
  }
  if (k !== h * w) throw new Error(`internal: hi-res patch map has ${k} entries, expected ${h}×${w}`);
  return { map, h, w };
}

export interface ImagePlan {
  /** Crop grid of the hi-res view. */
  rows: number;
  cols: number;
  /** Hi-res resize target [height, width] in pixels. */
  resized: [number, number];
  /** Pool indices for the whole image, [pooledShape[0], pooledShape[1]] row-major: the global view's
   * tokens first, then the hi-res tokens; indices into the flattened [numCrops·patchesPerCrop] ViT
   * features where crop 0 is the global view; −1 = padding. */
  pooledIdx: Int32Array;
  pooledShape: [number, number];
  /** Tokens of this image's visual block (global + hi-res, including start/end/col tokens). */
  numTokens: number;
  /** Pooled grid of the global view and of the hi-res view, [rows, cols]. */
  globalGrid: [number, number];
  hiResGrid: [number, number];
  /** ViT crops of this image: 1 global + rows·cols. */
  numCrops: number;
  /** Source image size in pixels. */
  width: number;
  height: number;
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`image size must be positive integers, got ${width}×${height}`);
  }
}

/** Tiling, resize target, pooling indices and token count of one image (Molmo2 image processor). */
export function planImage(
  width: number,
  height: number,
  settings: ProcessorSettings = RELEASED_PROCESSOR_SETTINGS,
  geometry: CropGeometry = RELEASED_GEOMETRY,
): ImagePlan {
  checkSize(width, height);
  const p = cropParams(settings, geometry);
  const [rows, cols] = selectTiling(height - p.marginPx, width - p.marginPx, p.windowPx, settings.maxCrops);
  const resized: [number, number] = [rows * p.windowPx + p.marginPx, cols * p.windowPx + p.marginPx];
  const [poolH, poolW] = settings.imagePoolingSize;
  const P = poolH * poolW;
  const n = p.patchesPerCrop;

  const globalMap = Int32Array.from({ length: n * n }, (_, i) => i);
  const global = poolIndexMap(globalMap, n, n, poolH, poolW);

  const hi = hiResPatchMap(rows, cols, p);
  const hiRes = poolIndexMap(hi.map, hi.h, hi.w, poolH, poolW);
  // The global view is crop 0, so hi-res crop patches move up by one crop.
  for (let i = 0; i < hiRes.idx.length; i++) if (hiRes.idx[i] >= 0) hiRes.idx[i] += n * n;

  const pooledIdx = new Int32Array(global.idx.length + hiRes.idx.length);
  pooledIdx.set(global.idx, 0);
  pooledIdx.set(hiRes.idx, global.idx.length);

  const [gh, gw] = global.grid;
  const [hh, hw] = hiRes.grid;
  const globalTokens = 2 + gh * (gw + (settings.useSingleCropColTokens ? 1 : 0));
  const hiResTokens = 2 + hh * (hw + (settings.imageUseColTokens ? 1 : 0));
  return {
    rows,
    cols,
    resized,
    pooledIdx,
    pooledShape: [pooledIdx.length / P, P],
    numTokens: globalTokens + hiResTokens,
    globalGrid: global.grid,
    hiResGrid: hiRes.grid,
    numCrops: 1 + rows * cols,
    width,
    height,
  };
}

/**
 * The hi-res view's patch map of a planned image: for each 14-px patch of the resized image (row-major
 * [h, w]), its index among the image's ViT patches (global view first, so hi-res indices start at one
 * crop's patches), plus `offset` (the ViT patches of the images before it in a prompt). The processor's
 * `subpatch_mapping`, which MolmoPoint's answers are read through.
 */
export function imagePatchMap(
  plan: Pick<ImagePlan, 'rows' | 'cols'>,
  offset = 0,
  settings: ProcessorSettings = RELEASED_PROCESSOR_SETTINGS,
  geometry: CropGeometry = RELEASED_GEOMETRY,
): { map: Int32Array; h: number; w: number } {
  const p = cropParams(settings, geometry);
  const hi = hiResPatchMap(plan.rows, plan.cols, p);
  const shift = p.patchesPerCrop * p.patchesPerCrop + offset;
  return { map: hi.map.map((i) => i + shift), h: hi.h, w: hi.w };
}

export interface VideoFramePlan {
  /** Pool indices of one frame, [tokens, P], into that frame's patches (0 .. patchesPerCrop−1). */
  pooledIdx: Int32Array;
  pooledShape: [number, number];
  grid: [number, number];
  /** <im_patch> tokens of one frame (81 with 3×3 pooling). */
  patchTokens: number;
  /** Tokens of one frame's visual block (start + patches [+ col tokens] + end), timestamp text excluded. */
  numTokens: number;
}

/** Pooling layout of a video frame: the 378² stretched frame pooled with the video pool size. */
export function planVideoFrame(
  settings: ProcessorSettings = RELEASED_PROCESSOR_SETTINGS,
  geometry: CropGeometry = RELEASED_GEOMETRY,
): VideoFramePlan {
  const n = cropParams(settings, geometry).patchesPerCrop;
  const [poolH, poolW] = settings.videoPoolingSize;
  const map = Int32Array.from({ length: n * n }, (_, i) => i);
  const { grid, idx } = poolIndexMap(map, n, n, poolH, poolW);
  const patchTokens = grid[0] * grid[1];
  return {
    pooledIdx: idx,
    pooledShape: [patchTokens, poolH * poolW],
    grid,
    patchTokens,
    numTokens: 2 + grid[0] * (grid[1] + (settings.videoUseColTokens ? 1 : 0)),
  };
}

// ---------------------------------------------------------------------------------------------
// Pixel values
// ---------------------------------------------------------------------------------------------

/** uint8 → normalised float32 per channel, as the processor computes it: (u/255 − mean) / std in float32. */
export function normalisationTable(settings: ProcessorSettings): Float32Array[] {
  return [0, 1, 2].map((ch) => {
    const mean = f32(settings.imageMean[ch]);
    const std = f32(settings.imageStd[ch]);
    return Float32Array.from({ length: 256 }, (_, u) => f32(f32(f32(u / 255) - mean) / std));
  });
}

/**
 * Writes one crop of `img` (top-left x0, y0) as [patches, patchSize²·3] into `out` at `offset`:
 * patches row-major over the crop, each patch in (row-in-patch, col-in-patch, channel) order.
 */
function writeCropPatches(
  img: Uint8Array,
  imgW: number,
  x0: number,
  y0: number,
  g: CropGeometry,
  lut: Float32Array[],
  out: Float32Array,
  offset: number,
): void {
  const n = g.cropSize / g.patchSize;
  const ps = g.patchSize;
  let k = offset;
  for (let py = 0; py < n; py++) {
    for (let px = 0; px < n; px++) {
      for (let dy = 0; dy < ps; dy++) {
        let s = ((y0 + py * ps + dy) * imgW + x0 + px * ps) * 3;
        for (let dx = 0; dx < ps; dx++) {
          out[k++] = lut[0][img[s++]];
          out[k++] = lut[1][img[s++]];
          out[k++] = lut[2][img[s++]];
        }
      }
    }
  }
}

/** Floats per crop of pixel_values (729 · 588 for the released geometry). */
export function cropLength(geometry: CropGeometry = RELEASED_GEOMETRY): number {
  const n = geometry.cropSize / geometry.patchSize;
  return n * n * geometry.patchSize * geometry.patchSize * 3;
}

/**
 * pixel_values of one image, [numCrops, patchesPerCrop, patchSize²·3] flattened: the 378² stretched
 * global view, then the overlapping crops of the hi-res resize, row-major.
 */
export function imagePixelValues(
  rgb: Uint8Array,
  width: number,
  height: number,
  settings: ProcessorSettings = RELEASED_PROCESSOR_SETTINGS,
  geometry: CropGeometry = RELEASED_GEOMETRY,
  plan: ImagePlan = planImage(width, height, settings, geometry),
): Float32Array {
  checkImage(rgb, width, height);
  if (plan.width !== width || plan.height !== height) throw new Error(`plan is for ${plan.width}×${plan.height}, image is ${width}×${height}`);
  const lut = normalisationTable(settings);
  const per = cropLength(geometry);
  const out = new Float32Array(plan.numCrops * per);
  const c = geometry.cropSize;

  const global = resizeBilinearU8(rgb, width, height, c, c);
  writeCropPatches(global, c, 0, 0, geometry, lut, out, 0);

  const [rh, rw] = plan.resized;
  const hiRes = resizeBilinearU8(rgb, width, height, rw, rh);
  const stride = cropParams(settings, geometry).windowPx;
  for (let r = 0; r < plan.rows; r++) {
    for (let col = 0; col < plan.cols; col++) {
      const crop = 1 + r * plan.cols + col;
      writeCropPatches(hiRes, rw, col * stride, r * stride, geometry, lut, out, crop * per);
    }
  }
  return out;
}

/** pixel_values of one video frame, [patchesPerCrop, patchSize²·3]: the frame stretched to 378². */
export function videoFramePixelValues(
  rgb: Uint8Array,
  width: number,
  height: number,
  settings: ProcessorSettings = RELEASED_PROCESSOR_SETTINGS,
  geometry: CropGeometry = RELEASED_GEOMETRY,
): Float32Array {
  checkImage(rgb, width, height, 'video frame');
  const c = geometry.cropSize;
  const out = new Float32Array(cropLength(geometry));
  writeCropPatches(resizeBilinearU8(rgb, width, height, c, c), c, 0, 0, geometry, normalisationTable(settings), out, 0);
  return out;
}
