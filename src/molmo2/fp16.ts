// IEEE 754 binary16 conversion (round to nearest, ties to even) both ways: fp16 weights and constants
// of the converted graphs, F16 checkpoint tensors, float16 logits read back from a session.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** binary16 bits of `v` (first rounded to float32): correct subnormals, overflow to ±inf, quiet NaN. */
export function float16Bits(v: number): number {
  f32[0] = v;
  return float16BitsOfFloat32Bits(u32[0]);
}

/**
 * binary16 bits of the float32 with bit pattern `x`. Normal results take one add and shift: adding
 * 0xfff plus the kept mantissa's lowest bit before dropping 13 bits rounds to nearest with ties to
 * even, and a carry out of the mantissa correctly bumps the exponent (up to infinity).
 */
export function float16BitsOfFloat32Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x38800000) {
    // |v| ≥ 2^-14, the smallest normal binary16.
    if (abs < 0x47800000) return sign | ((abs + 0xfff + ((abs >>> 13) & 1) - 0x38000000) >>> 13);
    if (abs > 0x7f800000) return sign | 0x7e00 | ((abs & 0x7fffff) >>> 13); // NaN: quiet, payload kept
    return sign | 0x7c00; // ±inf, and finite values of 2^16 and more
  }
  if (abs < 0x33000000) return sign; // below half the smallest subnormal (2^-25): ±0
  // Subnormal result: value = m · 2^-24 with m = (1.mant) · 2^(exp-127+24) → shift the 24-bit mantissa.
  const mant = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - (abs >>> 23);
  const half = 1 << (shift - 1);
  const rest = mant & ((1 << shift) - 1);
  let m = mant >>> shift;
  if (rest > half || (rest === half && m & 1)) m++; // a carry into bit 10 gives the smallest normal, as it should
  return sign | m;
}

/** The number a binary16 bit pattern stands for. */
export function float16Value(bits: number): number {
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return (bits & 0x8000 ? -mant : mant) * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : bits & 0x8000 ? -Infinity : Infinity;
  // A normal binary16 is a normal float32 with the exponent rebiased (127 − 15 = 112).
  u32[0] = ((bits & 0x8000) << 16) | ((exp + 112) << 23) | (mant << 13);
  return f32[0];
}

/** Converts `src` into `dst` (same length) as binary16 bits. */
export function float32ToFloat16Into(src: Float32Array, dst: Uint16Array): void {
  if (dst.length < src.length) throw new Error(`float16 output holds ${dst.length} values, need ${src.length}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    const x = bits[i];
    const abs = x & 0x7fffffff;
    // The common case inline: a normal binary16 result.
    dst[i] = (abs - 0x38800000) >>> 0 < 0x0f000000 ? ((x >>> 16) & 0x8000) | ((abs + 0xfff + ((abs >>> 13) & 1) - 0x38000000) >>> 13) : float16BitsOfFloat32Bits(x);
  }
}

export function toFloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  if (values instanceof Float32Array) {
    float32ToFloat16Into(values, out);
    return out;
  }
  for (let i = 0; i < values.length; i++) out[i] = float16Bits(values[i]);
  return out;
}

export function fromFloat16(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16Value(bits[i]);
  return out;
}
