// Reference vision stack: SigLIP-style ViT over each crop, concatenation of selected block outputs,
// attention pooling with a masked-mean query, and the SwiGLU projector into the decoder width.
// MolmoPoint's connector (MolmoPointAdapter) is the same pooling with two differences handled here:
// learned position rows added to each window first, and possibly no output projection.
import type { Molmo2Config } from '../config.ts';
import { pointNames, visionNames } from '../tensors.ts';
import { add, geluTanh, groupedAttention, layerNorm, linear, silu } from './ops.ts';
import type { Weights } from './weights.ts';

interface VitBlock {
  attnNormW: Float32Array;
  attnNormB: Float32Array;
  wq: Float32Array;
  bq: Float32Array;
  wk: Float32Array;
  bk: Float32Array;
  wv: Float32Array;
  bv: Float32Array;
  wo: Float32Array;
  bo: Float32Array;
  ffnNormW: Float32Array;
  ffnNormB: Float32Array;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

export interface VisionWeights {
  patchW: Float32Array;
  patchB: Float32Array;
  posEmb: Float32Array;
  blocks: VitBlock[];
  /** `wo`/`bo` are null when the pooling has no output projection (MolmoPoint). */
  pool: { wq: Float32Array; bq: Float32Array; wk: Float32Array; bk: Float32Array; wv: Float32Array; bv: Float32Array; wo: Float32Array | null; bo: Float32Array | null };
  /** MolmoPoint's position rows added to each pooling window, [positions, inDim]; null for Molmo2. */
  poolPositions: Float32Array | null;
  proj: { w1: Float32Array; w2: Float32Array; w3: Float32Array };
}

export async function loadVisionWeights(c: Molmo2Config, w: Weights): Promise<VisionWeights> {
  const names = visionNames(c);
  const blocks: VitBlock[] = [];
  for (let i = 0; i < c.vitBlocksUsed; i++) {
    const b = names.vitBlock(i);
    blocks.push({
      attnNormW: await w.get(`${b}.attention_norm.weight`),
      attnNormB: await w.get(`${b}.attention_norm.bias`),
      wq: await w.get(`${b}.attention.wq.weight`),
      bq: await w.get(`${b}.attention.wq.bias`),
      wk: await w.get(`${b}.attention.wk.weight`),
      bk: await w.get(`${b}.attention.wk.bias`),
      wv: await w.get(`${b}.attention.wv.weight`),
      bv: await w.get(`${b}.attention.wv.bias`),
      wo: await w.get(`${b}.attention.wo.weight`),
      bo: await w.get(`${b}.attention.wo.bias`),
      ffnNormW: await w.get(`${b}.ffn_norm.weight`),
      ffnNormB: await w.get(`${b}.ffn_norm.bias`),
      w1: await w.get(`${b}.feed_forward.w1.weight`),
      b1: await w.get(`${b}.feed_forward.w1.bias`),
      w2: await w.get(`${b}.feed_forward.w2.weight`),
      b2: await w.get(`${b}.feed_forward.w2.bias`),
    });
  }
  const p = names.pooling;
  const r = names.projector;
  const outLayer = !c.point || c.point.poolingOutLayer;
  return {
    patchW: await w.get(`${names.patchEmbedding}.weight`),
    patchB: await w.get(`${names.patchEmbedding}.bias`),
    posEmb: await w.get(names.positionalEmbedding),
    blocks,
    pool: {
      wq: await w.get(`${p}.wq.weight`),
      bq: await w.get(`${p}.wq.bias`),
      wk: await w.get(`${p}.wk.weight`),
      bk: await w.get(`${p}.wk.bias`),
      wv: await w.get(`${p}.wv.weight`),
      bv: await w.get(`${p}.wv.bias`),
      wo: outLayer ? await w.get(`${p}.wo.weight`) : null,
      bo: outLayer ? await w.get(`${p}.wo.bias`) : null,
    },
    poolPositions: c.point && c.point.poolingPositions > 0 ? await w.get(pointNames.poolingPositions) : null,
    proj: { w1: await w.get(`${r}.w1.weight`), w2: await w.get(`${r}.w2.weight`), w3: await w.get(`${r}.w3.weight`) },
  };
}

/** One pre-LN ViT block over one crop: x += wo(MHA(LN1(x))); x += w2(gelu_tanh(w1(LN2(x)))). */
function vitBlock(x: Float32Array, n: number, c: Molmo2Config, b: VitBlock): Float32Array {
  const { hiddenSize: d, numHeads, headDim, intermediateSize, layerNormEps } = c.vit;
  const h = layerNorm(x, n, d, b.attnNormW, b.attnNormB, layerNormEps);
  const q = linear(h, n, d, b.wq, numHeads * headDim, b.bq);
  const k = linear(h, n, d, b.wk, numHeads * headDim, b.bk);
  const v = linear(h, n, d, b.wv, numHeads * headDim, b.bv);
  const attn = groupedAttention(q, k, v, n, n, { numHeads, numKvHeads: numHeads, headDim }, () => true);
  const x1 = add(x, linear(attn, n, numHeads * headDim, b.wo, d, b.bo));
  const h2 = layerNorm(x1, n, d, b.ffnNormW, b.ffnNormB, layerNormEps);
  const f = linear(h2, n, d, b.w1, intermediateSize, b.b1).map(geluTanh);
  return add(x1, linear(f, n, intermediateSize, b.w2, d, b.b2));
}

/** Patches per crop and floats per patch implied by the ViT config (729 and 588 when released). */
export function cropShape(c: Molmo2Config): { patches: number; patchDim: number } {
  const [ih, iw] = c.vit.imageSize;
  const patches = (ih / c.vit.patchSize) * (iw / c.vit.patchSize);
  if (patches !== c.vit.numPos) throw new Error(`the ViT has ${c.vit.numPos} positions but ${ih}×${iw} crops give ${patches} patches`);
  return { patches, patchDim: c.vit.patchSize * c.vit.patchSize * 3 };
}

/**
 * ViT features of every crop: [nCrops·patches, layers·hidden], the outputs of the blocks listed by
 * `adapter.vitLayers` concatenated in that order (no final norm, no CLS token).
 */
export function vitFeatures(c: Molmo2Config, w: VisionWeights, pixelValues: Float32Array, nCrops: number): Float32Array {
  const { patches: n, patchDim } = cropShape(c);
  const d = c.vit.hiddenSize;
  if (!Number.isInteger(nCrops) || nCrops <= 0) throw new Error(`nCrops must be a positive integer, got ${nCrops}`);
  if (pixelValues.length !== nCrops * n * patchDim) throw new Error(`pixel_values has ${pixelValues.length} values, expected ${nCrops}×${n}×${patchDim}`);
  const layers = c.adapter.vitLayers;
  const width = layers.length * d;
  const out = new Float32Array(nCrops * n * width);
  for (let crop = 0; crop < nCrops; crop++) {
    const patchesOfCrop = pixelValues.subarray(crop * n * patchDim, (crop + 1) * n * patchDim);
    let x = add(linear(patchesOfCrop, n, patchDim, w.patchW, d, w.patchB), w.posEmb);
    const hidden: Float32Array[] = [];
    for (const b of w.blocks) {
      x = vitBlock(x, n, c, b);
      hidden.push(x);
    }
    for (let p = 0; p < n; p++) {
      layers.forEach((layer, li) => out.set(hidden[layer].subarray(p * d, (p + 1) * d), (crop * n + p) * width + li * d));
    }
  }
  return out;
}

/**
 * The ViT features of each pooling window: [T, P, inDim] from features [rows, inDim] and pooledIdx
 * [T, P] (−1 = padding, left zero), as the reference gathers them before pooling.
 */
export function gatherWindows(features: Float32Array, inDim: number, pooledIdx: Int32Array, P: number): Float32Array {
  const rows = features.length / inDim;
  if (!Number.isInteger(P) || P <= 0 || pooledIdx.length % P !== 0) throw new Error(`pooledIdx of ${pooledIdx.length} values does not split into rows of ${P}`);
  const out = new Float32Array(pooledIdx.length * inDim);
  pooledIdx.forEach((idx, slot) => {
    if (idx >= rows) throw new Error(`pooled index ${idx} is past the ${rows} feature rows`);
    if (idx >= 0) out.set(features.subarray(idx * inDim, (idx + 1) * inDim), slot * inDim);
  });
  return out;
}

/**
 * Attention pooling + projector. features: [rows, inDim] (all crops of the prompt, crop-major);
 * pooledIdx: [T, P] row indices, −1 = padding. Each token's query is the masked mean of its window;
 * padded slots are zeroed and, with `pooling_attention_mask`, excluded from the attention. Tokens
 * whose whole window is padding are dropped, as the reference does. Returns [T', textHidden].
 * MolmoPoint (MolmoPointAdapter): its position rows are added to every slot before anything else,
 * so with the attention mask a padded slot still carries its row into the query's sum; without the
 * mask padded slots are zeroed after the addition. Its mean always divides by the valid slots.
 */
export function poolAndProject(c: Molmo2Config, w: VisionWeights, features: Float32Array, pooledIdx: Int32Array, P: number): Float32Array {
  const inDim = c.adapter.vitLayers.length * c.vit.hiddenSize;
  const rows = features.length / inDim;
  if (!Number.isInteger(P) || P <= 0 || pooledIdx.length % P !== 0) throw new Error(`pooledIdx of ${pooledIdx.length} values does not split into rows of ${P}`);
  const { numHeads, headDim, hiddenSize, intermediateSize, textHiddenSize, poolingAttentionMask } = c.adapter;
  const T = pooledIdx.length / P;
  const width = numHeads * headDim;
  const positions = w.poolPositions;
  if (positions && P * inDim > positions.length) throw new Error(`pooling windows of ${P} do not fit the ${positions.length / inDim} position rows`);

  const kept: number[] = [];
  for (let t = 0; t < T; t++) if (pooledIdx.subarray(t * P, (t + 1) * P).some((i) => i >= 0)) kept.push(t);

  const toPool = new Float32Array(kept.length * P * inDim);
  const query = new Float32Array(kept.length * inDim);
  kept.forEach((t, r) => {
    let valid = 0;
    for (let s = 0; s < P; s++) {
      const idx = pooledIdx[t * P + s];
      if (idx >= rows) throw new Error(`pooled index ${idx} is past the ${rows} feature rows`);
      const used = idx >= 0;
      if (used) {
        valid++;
        toPool.set(features.subarray(idx * inDim, (idx + 1) * inDim), (r * P + s) * inDim);
      }
      if (positions && (used || poolingAttentionMask)) {
        for (let i = 0; i < inDim; i++) toPool[(r * P + s) * inDim + i] += positions[s * inDim + i];
      }
    }
    const denom = c.point ? valid : poolingAttentionMask ? valid : P;
    for (let s = 0; s < P; s++) for (let i = 0; i < inDim; i++) query[r * inDim + i] += toPool[(r * P + s) * inDim + i] / denom;
  });

  const pooled = new Float32Array(kept.length * width);
  const heads = { numHeads, numKvHeads: numHeads, headDim };
  kept.forEach((t, r) => {
    const q = linear(query.subarray(r * inDim, (r + 1) * inDim), 1, inDim, w.pool.wq, width, w.pool.bq);
    const window = toPool.subarray(r * P * inDim, (r + 1) * P * inDim);
    const k = linear(window, P, inDim, w.pool.wk, width, w.pool.bk);
    const v = linear(window, P, inDim, w.pool.wv, width, w.pool.bv);
    const allowed = (_i: number, j: number) => !poolingAttentionMask || pooledIdx[t * P + j] >= 0;
    pooled.set(groupedAttention(q, k, v, 1, P, heads, allowed), r * width);
  });
  // Without `wo` the heads' output is the projector's input directly (heads × head_dim = hidden).
  const attended = w.pool.wo ? linear(pooled, kept.length, width, w.pool.wo, hiddenSize, w.pool.bo) : pooled;

  const gate = linear(attended, kept.length, hiddenSize, w.proj.w1, intermediateSize);
  const up = linear(attended, kept.length, hiddenSize, w.proj.w3, intermediateSize);
  for (let i = 0; i < gate.length; i++) gate[i] = silu(gate[i]) * up[i];
  return linear(gate, kept.length, intermediateSize, w.proj.w2, textHiddenSize);
}
