// Plain loops for the reference forward pass. Tensors are row-major Float32Arrays; sums run in
// doubles (JS numbers) and results are stored as float32. Written for clarity on tiny models.

/** y[n, out] = x[n, in] · Wᵀ + b, with W stored [out, in] as in torch.nn.Linear. */
export function linear(x: Float32Array, n: number, inDim: number, w: Float32Array, outDim: number, bias?: Float32Array | null): Float32Array {
  if (x.length !== n * inDim) throw new Error(`linear: input has ${x.length} values, expected ${n}×${inDim}`);
  if (w.length !== outDim * inDim) throw new Error(`linear: weight has ${w.length} values, expected ${outDim}×${inDim}`);
  const y = new Float32Array(n * outDim);
  for (let r = 0; r < n; r++) {
    const xo = r * inDim;
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim;
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < inDim; i++) s += x[xo + i] * w[wo + i];
      y[r * outDim + o] = s;
    }
  }
  return y;
}

/** LayerNorm over the last dimension (biased variance). */
export function layerNorm(x: Float32Array, n: number, dim: number, w: Float32Array, b: Float32Array, eps: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let r = 0; r < n; r++) {
    const o = r * dim;
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[o + i];
    mean /= dim;
    let v = 0;
    for (let i = 0; i < dim; i++) v += (x[o + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / dim + eps);
    for (let i = 0; i < dim; i++) y[o + i] = (x[o + i] - mean) * inv * w[i] + b[i];
  }
  return y;
}

/** RMSNorm over groups of `dim` values: x / sqrt(mean(x²) + eps) · w. */
export function rmsNorm(x: Float32Array, dim: number, w: Float32Array, eps: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let o = 0; o < x.length; o += dim) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[o + i] = Math.fround(x[o + i] * inv) * w[i];
  }
  return y;
}

/** GELU, tanh approximation (`gelu_pytorch_tanh`). */
export function geluTanh(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
}

export function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

export function add(a: Float32Array, b: Float32Array): Float32Array {
  if (a.length !== b.length) throw new Error(`add: ${a.length} vs ${b.length} values`);
  const y = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i] + b[i];
  return y;
}

export interface HeadLayout {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

/**
 * Scaled dot-product attention with grouped KV heads: query head h reads KV head ⌊h / (H / Hkv)⌋
 * (torch's repeat_kv / repeat_interleave). q: [sq, H·D]; k, v: [sk, Hkv·D]; `allowed(i, j)` says
 * whether query i may attend to key j. A query with no allowed key gets zeros.
 */
export function groupedAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  sq: number,
  sk: number,
  heads: HeadLayout,
  allowed: (i: number, j: number) => boolean,
  scale = 1 / Math.sqrt(heads.headDim),
): Float32Array {
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = heads;
  if (H % Hkv !== 0) throw new Error(`attention: ${H} heads do not split into ${Hkv} KV groups`);
  const nRep = H / Hkv;
  const out = new Float32Array(sq * H * D);
  const scores = new Float64Array(sk);
  for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / nRep);
    for (let i = 0; i < sq; i++) {
      const qo = i * H * D + h * D;
      let max = -Infinity;
      for (let j = 0; j < sk; j++) {
        if (!allowed(i, j)) {
          scores[j] = -Infinity;
          continue;
        }
        const ko = j * Hkv * D + kvh * D;
        let s = 0;
        for (let d = 0; d < D; d++) s += q[qo + d] * k[ko + d];
        scores[j] = s * scale;
        if (scores[j] > max) max = scores[j];
      }
      if (max === -Infinity) continue;
      let total = 0;
      for (let j = 0; j < sk; j++) {
        scores[j] = scores[j] === -Infinity ? 0 : Math.exp(scores[j] - max);
        total += scores[j];
      }
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let j = 0; j < sk; j++) if (scores[j] !== 0) acc += scores[j] * v[j * Hkv * D + kvh * D + d];
        out[qo + d] = acc / total;
      }
    }
  }
  return out;
}

/** Slices columns [from, from + width) of a [n, dim] matrix. */
export function columns(x: Float32Array, n: number, dim: number, from: number, width: number): Float32Array {
  const y = new Float32Array(n * width);
  for (let r = 0; r < n; r++) y.set(x.subarray(r * dim + from, r * dim + from + width), r * width);
  return y;
}

/** Index of the largest value (first on ties). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
