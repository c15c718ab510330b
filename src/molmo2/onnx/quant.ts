// 4-bit block quantization in the layout of com.microsoft.MatMulNBits (bits 4):
//   B           uint8 [N, ceil(K/bs), bs/2]   row n = output feature; two 4-bit codes per byte, low nibble first
//   scales      [N · ceil(K/bs)]               float32 or float16 (same type as the activations)
//   zero_points uint8 [N · ceil(ceil(K/bs)/2)] only when asymmetric; two blocks per byte, low nibble first
// A weight w[n, k] (torch Linear layout [out, in]) is reconstructed as (code − zero_point) · scale.
//
// Default: round-to-nearest, symmetric, block 32. The scale maps the block's value of largest
// magnitude to code 0 (scale = that value / −8) so all 16 codes are used and no zero_points tensor is
// needed (the kernels' implicit zero point is 8); every fast MatMulNBits path on WebGPU and the CPU
// handles it. Asymmetric (min/max with a zero point per block) is available for comparison.
import { float16Bits, float16Value } from './fp16.ts';

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

/** Quantizes a row-major [N, K] weight (torch Linear layout) to MatMulNBits int4. */
export function quantizeQ4(w: Float32Array, N: number, K: number, o: Q4Options = {}): Q4Weight {
  const bs = o.blockSize ?? 32;
  const symmetric = o.symmetric ?? true;
  const scaleType = o.scaleType ?? 'float32';
  if (!Number.isInteger(bs) || bs < 16 || (bs & (bs - 1)) !== 0) throw new Error(`block size must be a power of two ≥ 16, got ${bs}`);
  if (w.length !== N * K) throw new Error(`weight has ${w.length} values, expected ${N}×${K}`);
  const nb = Math.ceil(K / bs);
  const packed = new Uint8Array(N * nb * (bs / 2));
  const scales = scaleType === 'float16' ? new Uint16Array(N * nb) : new Float32Array(N * nb);
  const zpStride = Math.ceil(nb / 2);
  const zeroPoints = symmetric ? undefined : new Uint8Array(N * zpStride);
  const codes = new Uint8Array(bs);

  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nb; b++) {
      const from = n * K + b * bs;
      const len = Math.min(bs, K - b * bs);
      let scale: number;
      let zp: number;
      if (symmetric) {
        let extreme = 0;
        for (let i = 0; i < len; i++) if (Math.abs(w[from + i]) > Math.abs(extreme)) extreme = w[from + i];
        scale = roundScale(extreme / -8, scaleType);
        zp = 8;
      } else {
        let lo = 0;
        let hi = 0;
        for (let i = 0; i < len; i++) {
          lo = Math.min(lo, w[from + i]);
          hi = Math.max(hi, w[from + i]);
        }
        scale = roundScale((hi - lo) / 15, scaleType);
        zp = scale === 0 ? 8 : Math.min(15, Math.max(0, Math.round(-lo / scale)));
      }
      const inv = scale === 0 ? 0 : 1 / scale;
      codes.fill(zp); // padding past K reconstructs to 0
      for (let i = 0; i < len; i++) codes[i] = Math.min(15, Math.max(0, Math.round(w[from + i] * inv) + zp));
      const out = (n * nb + b) * (bs / 2);
      for (let j = 0; j < bs / 2; j++) packed[out + j] = codes[2 * j] | (codes[2 * j + 1] << 4);
      scales[n * nb + b] = scaleType === 'float16' ? float16Bits(scale) : scale;
      if (zeroPoints) zeroPoints[n * zpStride + (b >> 1)] |= b & 1 ? zp << 4 : zp;
    }
  }
  return { N, K, blockSize: bs, blocksPerRow: nb, packed, scales, scaleType, zeroPoints };
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
