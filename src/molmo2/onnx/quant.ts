// 4-bit (and, below, 8-bit) block quantization in the layout of com.microsoft.MatMulNBits (bits 4):
//   B           uint8 [N, ceil(K/bs), bs/2]   row n = output feature; two 4-bit codes per byte, low nibble first
//   scales      [N · ceil(K/bs)]               float32 or float16 (same type as the activations)
//   zero_points uint8 [N · ceil(ceil(K/bs)/2)] only when asymmetric; two blocks per byte, low nibble first
// A weight w[n, k] (torch Linear layout [out, in]) is reconstructed as (code − zero_point) · scale.
//
// Default: round-to-nearest, symmetric, block 32. The scale maps the block's value of largest
// magnitude to code 0 (scale = that value / −8) so all 16 codes are used and no zero_points tensor is
// needed (the kernels' implicit zero point is 8); every fast MatMulNBits path on WebGPU and the CPU
// handles it. Asymmetric (min/max with a zero point per block) is available for comparison.
import { float16Bits, float16Value } from '../fp16.ts';

export interface Q4Options {
  blockSize?: number;
  symmetric?: boolean;
  /** Storage type of the scales; quantization uses the stored (rounded) scale. */
  scaleType?: 'float32' | 'float16';
}

export interface Q4Weight {
  N: number;
  K: number;
  blockSize: number;
  blocksPerRow: number;
  /** [N, blocksPerRow, blockSize/2]. */
  packed: Uint8Array;
  /** [N · blocksPerRow] as float32 values or float16 bits. */
  scales: Float32Array | Uint16Array;
  scaleType: 'float32' | 'float16';
  /** [N · ceil(blocksPerRow/2)], absent for symmetric quantization. */
  zeroPoints?: Uint8Array;
}

const roundScale = (s: number, type: 'float32' | 'float16') => (type === 'float16' ? float16Value(float16Bits(s)) : Math.fround(s));

/** Bytes of the packed codes, scales and zero points of `rows` quantized rows of length K. */
export function q4RowBytes(K: number, o: Q4Options = {}): { packed: number; scales: number; zeroPoints: number } {
  const bs = o.blockSize ?? 32;
  const nb = Math.ceil(K / bs);
  return { packed: nb * (bs / 2), scales: nb * ((o.scaleType ?? 'float32') === 'float16' ? 2 : 4), zeroPoints: (o.symmetric ?? true) ? 0 : Math.ceil(nb / 2) };
}

/** Quantizes a row-major [N, K] weight (torch Linear layout) to MatMulNBits int4. */
export function quantizeQ4(w: Float32Array, N: number, K: number, o: Q4Options = {}): Q4Weight {
  const bs = o.blockSize ?? 32;
  const symmetric = o.symmetric ?? true;
  const scaleType = o.scaleType ?? 'float32';
  checkBlockSize(bs);
  if (w.length !== N * K) throw new Error(`weight has ${w.length} values, expected ${N}×${K}`);
  const nb = Math.ceil(K / bs);
  const packed = new Uint8Array(N * nb * (bs / 2));
  const scales = scaleType === 'float16' ? new Uint16Array(N * nb) : new Float32Array(N * nb);
  const zeroPoints = symmetric ? undefined : new Uint8Array(N * Math.ceil(nb / 2));
  quantizeQ4Into(w, N, K, { blockSize: bs, symmetric, scaleType }, packed, scales, zeroPoints);
  return { N, K, blockSize: bs, blocksPerRow: nb, packed, scales, scaleType, zeroPoints };
}

function checkBlockSize(bs: number): void {
  if (!Number.isInteger(bs) || bs < 16 || (bs & (bs - 1)) !== 0) throw new Error(`block size must be a power of two ≥ 16, got ${bs}`);
}

/**
 * quantizeQ4 into caller-provided outputs (rows are independent, so any row block of a weight can be
 * quantized on its own): `packed` [N · nb · bs/2], `scales` [N · nb] (float32 values or float16 bits
 * by `o.scaleType`), `zeroPoints` [N · ceil(nb/2)] (zero-filled) when asymmetric.
 */
export function quantizeQ4Into(
  w: Float32Array,
  N: number,
  K: number,
  o: Q4Options,
  packed: Uint8Array,
  scales: Float32Array | Uint16Array,
  zeroPoints?: Uint8Array,
): void {
  const bs = o.blockSize ?? 32;
  const symmetric = o.symmetric ?? true;
  const scaleType = o.scaleType ?? 'float32';
  checkBlockSize(bs);
  const nb = Math.ceil(K / bs);
  if (w.length < N * K || packed.length < N * nb * (bs / 2) || scales.length < N * nb) throw new Error(`quantizeQ4Into: buffers too small for ${N}×${K}`);
  if (symmetric) {
    quantizeSymmetric(w, N, K, bs, scaleType === 'float16', packed, scales);
    return;
  }
  if (!zeroPoints || zeroPoints.length < N * Math.ceil(nb / 2)) throw new Error('quantizeQ4Into: asymmetric quantization needs a zero-points buffer');
  quantizeAsymmetric(w, N, K, bs, scaleType, packed, scales, zeroPoints);
}

/**
 * Symmetric round-to-nearest: scale = (the block's first value of largest magnitude) / −8, rounded to
 * the stored type; code = clamp(round(w / scale) + 8, 0, 15) with JavaScript's Math.round (halves
 * toward +∞) on the float64 product w · (1 / scale). A NaN code is stored as 0, as a Uint8Array does.
 */
function quantizeSymmetric(w: Float32Array, N: number, K: number, bs: number, f16: boolean, packed: Uint8Array, scales: Float32Array | Uint16Array): void {
  const nb = Math.ceil(K / bs);
  let out = 0;
  let si = 0;
  for (let n = 0; n < N; n++) {
    const row = n * K;
    for (let b = 0; b < nb; b++) {
      quantizeSymmetricBlock(w, row + b * bs, Math.min(bs, K - b * bs), bs, f16, packed, out, scales, si++);
      out += bs >> 1;
    }
  }
}

/** One block of quantizeSymmetric: `len` values from `w[from]` → bs/2 bytes at packed[out], scales[si]. */
export function quantizeSymmetricBlock(w: Float32Array, from: number, len: number, bs: number, f16: boolean, packed: Uint8Array, out: number, scales: Float32Array | Uint16Array, si: number): void {
  const half = bs >> 1;
  const scale = storeSymmetricScale(w, from, len, -8, f16, scales, si);
  const inv = scale === 0 ? 0 : 1 / scale;
  if (len === bs) {
    for (let i = from, j = out, last = out + half; j < last; i += 2, j++) {
      // t = x + 8.5 and code = floor(t) (clamped), computed without Math.round's data-dependent
      // branch. Only when t rounded to an integer can floor(t) differ from Math.round(x) + 8;
      // roundCode() settles those cases exactly. NaN truncates to code 0.
      let t0 = w[i] * inv + 8.5;
      let t1 = w[i + 1] * inv + 8.5;
      t0 = t0 > 15.5 ? 15.5 : t0 < 0 ? 0.5 : t0;
      t1 = t1 > 15.5 ? 15.5 : t1 < 0 ? 0.5 : t1;
      let c0 = t0 | 0;
      let c1 = t1 | 0;
      if (c0 === t0) c0 = roundCode(w[i] * inv, c0);
      if (c1 === t1) c1 = roundCode(w[i + 1] * inv, c1);
      packed[j] = c0 | (c1 << 4);
    }
  } else {
    const codes = new Uint8Array(bs).fill(8); // padding past K reconstructs to 0
    for (let i = 0; i < len; i++) codes[i] = Math.min(15, Math.max(0, Math.round(w[from + i] * inv) + 8));
    for (let j = 0; j < half; j++) packed[out + j] = codes[2 * j] | (codes[2 * j + 1] << 4);
  }
}

/**
 * The symmetric scale of the block of `len` values at `w[from]`: its first value of largest magnitude
 * divided by `lowestCode` (−8 for int4, −128 for int8), stored at scales[si] as float32 or float16
 * bits. Returns the stored (rounded) scale, which the codes are computed with.
 */
function storeSymmetricScale(w: Float32Array, from: number, len: number, lowestCode: number, f16: boolean, scales: Float32Array | Uint16Array, si: number): number {
  let extreme = 0;
  let maxAbs = 0;
  for (let i = from, end = from + len; i < end; i++) {
    const a = Math.abs(w[i]);
    if (a > maxAbs) {
      maxAbs = a;
      extreme = w[i];
    }
  }
  if (f16) {
    const bits = float16Bits(extreme / lowestCode);
    scales[si] = bits;
    return float16Value(bits);
  }
  const scale = Math.fround(extreme / lowestCode);
  scales[si] = scale;
  return scale;
}

/**
 * Math.round(x) + 8 clamped to [0, 15], given c = the integer that fl(x + 8.5) rounded to: x + 8.5 is
 * exactly ≥ c when x ≥ c − 8.5 (both sides exact), otherwise the sum lay just below c.
 */
function roundCode(x: number, c: number): number {
  const r = x >= c - 8.5 ? c : c - 1;
  return r < 0 ? 0 : r > 15 ? 15 : r;
}

/** Asymmetric min/max quantization with a zero point per block (for comparison; not the default). */
function quantizeAsymmetric(
  w: Float32Array,
  N: number,
  K: number,
  bs: number,
  scaleType: 'float32' | 'float16',
  packed: Uint8Array,
  scales: Float32Array | Uint16Array,
  zeroPoints: Uint8Array,
): void {
  const nb = Math.ceil(K / bs);
  const zpStride = Math.ceil(nb / 2);
  const codes = new Uint8Array(bs);
  zeroPoints.fill(0, 0, N * zpStride);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nb; b++) {
      const from = n * K + b * bs;
      const len = Math.min(bs, K - b * bs);
      let lo = 0;
      let hi = 0;
      for (let i = 0; i < len; i++) {
        lo = Math.min(lo, w[from + i]);
        hi = Math.max(hi, w[from + i]);
      }
      const scale = roundScale((hi - lo) / 15, scaleType);
      const zp = scale === 0 ? 8 : Math.min(15, Math.max(0, Math.round(-lo / scale)));
      const inv = scale === 0 ? 0 : 1 / scale;
      codes.fill(zp); // padding past K reconstructs to 0
      for (let i = 0; i < len; i++) codes[i] = Math.min(15, Math.max(0, Math.round(w[from + i] * inv) + zp));
      const out = (n * nb + b) * (bs / 2);
      for (let j = 0; j < bs / 2; j++) packed[out + j] = codes[2 * j] | (codes[2 * j + 1] << 4);
      scales[n * nb + b] = scaleType === 'float16' ? float16Bits(scale) : scale;
      zeroPoints[n * zpStride + (b >> 1)] |= b & 1 ? zp << 4 : zp;
    }
  }
}

/** The [N, K] weight a Q4Weight stands for. */
export function dequantizeQ4(q: Q4Weight): Float32Array {
  const { N, K, blockSize: bs, blocksPerRow: nb } = q;
  const out = new Float32Array(N * K);
  const zpStride = Math.ceil(nb / 2);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nb; b++) {
      const s = q.scaleType === 'float16' ? float16Value(q.scales[n * nb + b]) : q.scales[n * nb + b];
      const zpByte = q.zeroPoints ? q.zeroPoints[n * zpStride + (b >> 1)] : 0x88;
      const zp = b & 1 ? zpByte >> 4 : zpByte & 15;
      const len = Math.min(bs, K - b * bs);
      for (let i = 0; i < len; i++) {
        const byte = q.packed[(n * nb + b) * (bs / 2) + (i >> 1)];
        const code = i & 1 ? byte >> 4 : byte & 15;
        out[n * K + b * bs + i] = (code - zp) * s;
      }
    }
  }
  return out;
}

/** Rows [from, to) of a quantized weight (for splitting a large weight along N). */
export function sliceQ4Rows(q: Q4Weight, from: number, to: number): Q4Weight {
  const rowBytes = q.blocksPerRow * (q.blockSize / 2);
  const zpStride = Math.ceil(q.blocksPerRow / 2);
  return {
    ...q,
    N: to - from,
    packed: q.packed.subarray(from * rowBytes, to * rowBytes),
    scales: q.scales.subarray(from * q.blocksPerRow, to * q.blocksPerRow),
    zeroPoints: q.zeroPoints?.subarray(from * zpStride, to * zpStride),
  };
}

// ---------------------------------------------------------------------------------------------
// 8-bit blocks (MatMulNBits bits 8), for the vision encoder of the q4 variant:
//   B       uint8 [N, ceil(K/bs), bs]   one code per byte
//   scales  [N · ceil(K/bs)]            float32 or float16
// Symmetric as the int4 packing: scale = (the block's value of largest magnitude) / −128, code =
// clamp(round(w / scale) + 128, 0, 255), reconstructed as (code − 128) · scale with MatMulNBits'
// implicit zero point 128. No zero-points tensor.
// ---------------------------------------------------------------------------------------------

export interface Q8Weight {
  N: number;
  K: number;
  blockSize: number;
  blocksPerRow: number;
  /** [N, blocksPerRow, blockSize]. */
  packed: Uint8Array;
  /** [N · blocksPerRow] as float32 values or float16 bits. */
  scales: Float32Array | Uint16Array;
  scaleType: 'float32' | 'float16';
}

/** Bytes of the codes and scales of one 8-bit quantized row of length K. */
export function q8RowBytes(K: number, o: Q4Options = {}): { packed: number; scales: number } {
  const bs = o.blockSize ?? 32;
  const nb = Math.ceil(K / bs);
  return { packed: nb * bs, scales: nb * ((o.scaleType ?? 'float32') === 'float16' ? 2 : 4) };
}

/** Quantizes a row-major [N, K] weight (torch Linear layout) to MatMulNBits int8. */
export function quantizeQ8(w: Float32Array, N: number, K: number, o: Omit<Q4Options, 'symmetric'> = {}): Q8Weight {
  const bs = o.blockSize ?? 32;
  const scaleType = o.scaleType ?? 'float32';
  checkBlockSize(bs);
  if (w.length !== N * K) throw new Error(`weight has ${w.length} values, expected ${N}×${K}`);
  const nb = Math.ceil(K / bs);
  const packed = new Uint8Array(N * nb * bs);
  const scales = scaleType === 'float16' ? new Uint16Array(N * nb) : new Float32Array(N * nb);
  quantizeQ8Into(w, N, K, { blockSize: bs, scaleType }, packed, scales);
  return { N, K, blockSize: bs, blocksPerRow: nb, packed, scales, scaleType };
}

/** quantizeQ8 into caller-provided outputs: `packed` [N · nb · bs], `scales` [N · nb]. */
export function quantizeQ8Into(w: Float32Array, N: number, K: number, o: Omit<Q4Options, 'symmetric'>, packed: Uint8Array, scales: Float32Array | Uint16Array): void {
  const bs = o.blockSize ?? 32;
  const f16 = (o.scaleType ?? 'float32') === 'float16';
  checkBlockSize(bs);
  const nb = Math.ceil(K / bs);
  if (w.length < N * K || packed.length < N * nb * bs || scales.length < N * nb) throw new Error(`quantizeQ8Into: buffers too small for ${N}×${K}`);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nb; b++) {
      const from = n * K + b * bs;
      const len = Math.min(bs, K - b * bs);
      const si = n * nb + b;
      const scale = storeSymmetricScale(w, from, len, -128, f16, scales, si);
      const inv = scale === 0 ? 0 : 1 / scale;
      const out = si * bs;
      for (let i = 0; i < bs; i++) packed[out + i] = i < len ? Math.min(255, Math.max(0, Math.round(w[from + i] * inv) + 128)) : 128; // padding reconstructs to 0
    }
  }
}

/** The [N, K] weight a Q8Weight stands for. */
export function dequantizeQ8(q: Q8Weight): Float32Array {
  const { N, K, blockSize: bs, blocksPerRow: nb } = q;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nb; b++) {
      const s = q.scaleType === 'float16' ? float16Value(q.scales[n * nb + b]) : q.scales[n * nb + b];
      const len = Math.min(bs, K - b * bs);
      for (let i = 0; i < len; i++) out[n * K + b * bs + i] = (q.packed[(n * nb + b) * bs + i] - 128) * s;
    }
  }
  return out;
}
