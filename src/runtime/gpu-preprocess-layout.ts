// Tables the GPU preprocessing shader (gpu-preprocess.wgsl) reads, built from the CPU path's own math in
// src/molmo2/image.ts so both paths share one definition of taps, weights, crops and normalisation.
// Platform-free (no DOM, no WebGPU): the unit test runs the shader's arithmetic on these tables in Node.
import type { ProcessorSettings } from '../molmo2/config.ts';
import { axisTaps, cropParams, cropLength, normalisationTable, type CropGeometry, type ImagePlan } from '../molmo2/image.ts';

/** Bytes of one tap entry: i0 u32, i1 u32, w0 f32, w1 f32 (the WGSL `Tap` struct). */
export const TAP_BYTES = 16;
/** u32s of one crop entry: x-tap base, y-tap base, crop origin x0, y0 in the resized view (the WGSL `Crop`). */
export const CROP_WORDS = 4;

/** Everything one dispatch needs for one source image: its taps, its crops and where they go. */
export interface SourceLayout {
  width: number;
  height: number;
  /** Packed Tap entries of every resized view of this source, concatenated. */
  taps: ArrayBuffer;
  /** [crops, CROP_WORDS] u32. */
  crops: Uint32Array;
  numCrops: number;
  geometry: CropGeometry;
}

class TapTable {
  private parts: { i0: Int32Array; i1: Int32Array; w0: Float32Array; w1: Float32Array }[] = [];
  private length = 0;

  /** Appends the taps of one axis resize and returns its base index. */
  add(inSize: number, outSize: number): number {
    const base = this.length;
    this.parts.push(axisTaps(inSize, outSize));
    this.length += outSize;
    return base;
  }

  pack(): ArrayBuffer {
    const buf = new ArrayBuffer(this.length * TAP_BYTES);
    const u = new Uint32Array(buf);
    const f = new Float32Array(buf);
    let k = 0;
    for (const t of this.parts) {
      for (let o = 0; o < t.i0.length; o++, k += 4) {
        u[k] = t.i0[o];
        u[k + 1] = t.i1[o];
        f[k + 2] = t.w0[o];
        f[k + 3] = t.w1[o];
      }
    }
    return buf;
  }
}

/** An image: the stretched global view (crop 0), then the overlapping crops of the hi-res resize. */
export function imageLayout(plan: ImagePlan, settings: ProcessorSettings, geometry: CropGeometry): SourceLayout {
  const { width, height } = plan;
  const c = geometry.cropSize;
  const taps = new TapTable();
  const gx = taps.add(width, c);
  const gy = taps.add(height, c);
  const [rh, rw] = plan.resized;
  const hx = taps.add(width, rw);
  const hy = taps.add(height, rh);
  const stride = cropParams(settings, geometry).windowPx;
  const crops = new Uint32Array(plan.numCrops * CROP_WORDS);
  crops.set([gx, gy, 0, 0], 0);
  for (let r = 0; r < plan.rows; r++) {
    for (let col = 0; col < plan.cols; col++) {
      crops.set([hx, hy, col * stride, r * stride], (1 + r * plan.cols + col) * CROP_WORDS);
    }
  }
  return { width, height, taps: taps.pack(), crops, numCrops: plan.numCrops, geometry };
}

/** A video frame: one crop, the frame stretched to cropSize². */
export function videoFrameLayout(width: number, height: number, geometry: CropGeometry): SourceLayout {
  const taps = new TapTable();
  const x = taps.add(width, geometry.cropSize);
  const y = taps.add(height, geometry.cropSize);
  return { width, height, taps: taps.pack(), crops: Uint32Array.of(x, y, 0, 0), numCrops: 1, geometry };
}

/** uint8 → normalised value, [channel · 256 + u], the CPU path's table. */
export function normalisationLut(settings: ProcessorSettings): Float32Array {
  const lut = new Float32Array(768);
  normalisationTable(settings).forEach((t, ch) => lut.set(t, ch * 256));
  return lut;
}

const f32 = Math.fround;

/** a·b + c with one rounding (a fused multiply-add), or with two when a GPU does not fuse. */
export type FmaMode = 'fused' | 'unfused';

/**
 * The shader's arithmetic in JS, for tests: writes the crops of `layout` from packed RGB bytes into
 * `out` at crop `firstCrop`. With 'fused' it must equal imagePixelValues / videoFramePixelValues.
 */
export function emulateShader(rgb: Uint8Array, layout: SourceLayout, lut: Float32Array, out: Float32Array, firstCrop: number, mode: FmaMode = 'fused'): void {
  const fma = mode === 'fused' ? (a: number, b: number, c: number) => f32(a * b + c) : (a: number, b: number, c: number) => f32(f32(a * b) + c);
  const u = new Uint32Array(layout.taps);
  const f = new Float32Array(layout.taps);
  const { cropSize: n, patchSize: ps } = layout.geometry;
  const per = n / ps;
  const cropLen = cropLength(layout.geometry);
  const w = layout.width;
  for (let k = 0; k < layout.numCrops; k++) {
    const [xBase, yBase, x0, y0] = layout.crops.subarray(k * CROP_WORDS, (k + 1) * CROP_WORDS);
    for (let y = 0; y < n; y++) {
      const ty = (yBase + y0 + y) * 4;
      for (let x = 0; x < n; x++) {
        const tx = (xBase + x0 + x) * 4;
        const o = (firstCrop + k) * cropLen + (Math.floor(y / ps) * per + Math.floor(x / ps)) * ps * ps * 3 + ((y % ps) * ps + (x % ps)) * 3;
        for (let ch = 0; ch < 3; ch++) {
          const px = (xi: number, yi: number) => rgb[(yi * w + xi) * 3 + ch];
          const top = fma(px(u[tx], u[ty]), f[tx + 2], f32(px(u[tx + 1], u[ty]) * f[tx + 3]));
          const bottom = fma(px(u[tx], u[ty + 1]), f[tx + 2], f32(px(u[tx + 1], u[ty + 1]) * f[tx + 3]));
          const v = fma(top, f[ty + 2], f32(bottom * f[ty + 3]));
          out[o + ch] = lut[ch * 256 + Math.min(255, Math.max(0, roundHalfEven(v)))];
        }
      }
    }
  }
}

/** WGSL's round(): half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
