// Reference decoder (as Molmo2 stores it): split-vocab embedding with image features added at
// <im_patch> positions, blocks with fused q|k|v, q/k RMSNorm, rotate-half RoPE, grouped-query
// attention under Molmo2's prefill mask, SwiGLU MLP, final norm and lm_head. Qwen3 (4B, 8B): pre-norm
// blocks, per-head q/k norm, plain RoPE. OLMo-3 (O-7B): post-norm blocks (the norm after attention and
// after the MLP, before each residual add), q/k norm over the whole projections, and YaRN RoPE on the
// layers rope_scaling_layers lists (plain RoPE on the others).
// MolmoPoint runs the same decoder: its image features go to <im_low> tokens too, its lm head covers
// the 128 new rows as well, and its point head reads the state before the final norm (decodeLayers).
import type { Molmo2Config } from '../config.ts';
import { names, pointNames } from '../tensors.ts';
import { ropeFrequencies, ropeKindOf, ropeTable, type RopeKind } from '../rope.ts';
import { add, columns, groupedAttention, linear, rmsNorm, silu } from './ops.ts';
import type { Weights } from './weights.ts';

interface DecoderBlock {
  attnNorm: Float32Array;
  attProj: Float32Array;
  attProjBias: Float32Array | null;
  qNorm: Float32Array;
  kNorm: Float32Array;
  attnOut: Float32Array;
  ffNorm: Float32Array;
  ffProj: Float32Array;
  ffOut: Float32Array;
}

export interface DecoderWeights {
  embedding: Float32Array;
  newEmbedding: Float32Array;
  blocks: DecoderBlock[];
  lnF: Float32Array;
  /** [rows, d]: the base vocabulary for Molmo2; base + 128 new rows for MolmoPoint. */
  lmHead: Float32Array;
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const y = new Float32Array(a.length + b.length);
  y.set(a);
  y.set(b, a.length);
  return y;
}

/**
 * MolmoPoint's ExtendedLmHead: [output_embeddings; new_output_embeddings], or with tied weights the
 * input embedding's two tables.
 */
async function pointLmHead(c: Molmo2Config, w: Weights, embedding: Float32Array, newEmbedding: Float32Array): Promise<Float32Array> {
  if (c.point!.tiedLmHead) return concat(embedding, newEmbedding);
  return concat(await w.get(pointNames.lmHead), await w.get(pointNames.lmHeadNew));
}

export async function loadDecoderWeights(c: Molmo2Config, w: Weights): Promise<DecoderWeights> {
  const blocks: DecoderBlock[] = [];
  for (let i = 0; i < c.text.numLayers; i++) {
    const b = names.block(i);
    blocks.push({
      attnNorm: await w.get(`${b}.attn_norm.weight`),
      attProj: await w.get(`${b}.self_attn.att_proj.weight`),
      attProjBias: c.text.qkvBias ? await w.get(`${b}.self_attn.att_proj.bias`) : null,
      qNorm: await w.get(`${b}.self_attn.q_norm.weight`),
      kNorm: await w.get(`${b}.self_attn.k_norm.weight`),
      attnOut: await w.get(`${b}.self_attn.attn_out.weight`),
      ffNorm: await w.get(`${b}.ff_norm.weight`),
      ffProj: await w.get(`${b}.mlp.ff_proj.weight`),
      ffOut: await w.get(`${b}.mlp.ff_out.weight`),
    });
  }
  const embedding = await w.get(names.embedding);
  const newEmbedding = await w.get(names.newEmbedding);
  return {
    embedding,
    newEmbedding,
    blocks,
    lnF: await w.get(names.finalNorm),
    lmHead: c.point ? await pointLmHead(c, w, embedding, newEmbedding) : await w.get(names.lmHead),
  };
}

/** Keys (after RoPE) and values of every layer for the positions seen so far. */
export interface KvCache {
  keys: Float32Array[];
  values: Float32Array[];
  length: number;
}

export function emptyCache(c: Molmo2Config): KvCache {
  const none = () => Array.from({ length: c.text.numLayers }, () => new Float32Array(0));
  return { keys: none(), values: none(), length: 0 };
}

/**
 * Embeddings of `ids` from concat(embedding, new_embedding), with row t of `imageFeatures` added to
 * the t-th <im_patch> token (addition, not replacement). MolmoPoint adds them to its non-indexable
 * <im_low> tokens as well, in the same token order.
 */
export function embed(c: Molmo2Config, w: DecoderWeights, ids: ArrayLike<number>, imageFeatures: Float32Array): Float32Array {
  const d = c.text.hiddenSize;
  const lowRes = c.point ? c.point.nonIndexablePatchId : -1;
  const tokensName = c.point ? 'image (<im_patch>, <im_low>)' : '<im_patch>';
  const x = new Float32Array(ids.length * d);
  let feature = 0;
  const featureRows = imageFeatures.length / d;
  if (!Number.isInteger(featureRows)) throw new Error(`image features have ${imageFeatures.length} values, not a multiple of d_model ${d}`);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    x.set(embeddingRow(c, w, id, i), i * d);
    if (id === c.tokens.imagePatch || id === lowRes) {
      if (feature >= featureRows) throw new Error(`more ${tokensName} tokens than the ${featureRows} image feature rows`);
      for (let j = 0; j < d; j++) x[i * d + j] += imageFeatures[feature * d + j];
      feature++;
    }
  }
  if (feature !== featureRows) throw new Error(`${featureRows} image feature rows but ${feature} ${tokensName} tokens`);
  return x;
}

/** Row `id` of concat(embedding, new_embedding) (a view; `at` names the position in errors). */
export function embeddingRow(c: Molmo2Config, w: DecoderWeights, id: number, at = 0): Float32Array {
  const d = c.text.hiddenSize;
  const { vocabSize, additionalVocabSize } = c.text;
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize + additionalVocabSize) throw new Error(`token id ${id} at position ${at} is outside the ${vocabSize + additionalVocabSize}-row embedding`);
  return id < vocabSize ? w.embedding.subarray(id * d, (id + 1) * d) : w.newEmbedding.subarray((id - vocabSize) * d, (id - vocabSize + 1) * d);
}

/**
 * cos/sin tables for positions [from, from + n), computed in float32 the way the HF rotary module does
 * (the `kind` a layer reads: plain, or YaRN's scaled table).
 */
export function ropeTables(c: Molmo2Config, from: number, n: number, kind: RopeKind = 'default'): { cos: Float32Array; sin: Float32Array } {
  return ropeTable(ropeFrequencies(c.text, kind), from, n);
}

/**
 * Rotate-half RoPE in place on [n, heads·D] (HF convention: element i pairs with i + D/2):
 * x'[i] = x[i]·cos − x[i+D/2]·sin, x'[i+D/2] = x[i+D/2]·cos + x[i]·sin.
 */
export function applyRope(x: Float32Array, n: number, heads: number, D: number, cos: Float32Array, sin: Float32Array): void {
  const half = D / 2;
  for (let p = 0; p < n; p++) {
    for (let h = 0; h < heads; h++) {
      const o = (p * heads + h) * D;
      for (let i = 0; i < half; i++) {
        const a = x[o + i];
        const b = x[o + i + half];
        const cs = cos[p * half + i];
        const sn = sin[p * half + i];
        x[o + i] = a * cs - b * sn;
        x[o + i + half] = b * cs + a * sn;
      }
    }
  }
}

/**
 * Runs `x` ([n, d_model] embeddings of the positions after the cache) through the decoder, appending
 * to `cache`. `tokenTypeIds` covers all positions (cache + new); `bidirectionalImages` applies the
 * prefill rule "causal OR both tokens image-special". Returns the final-norm hidden states [n, d].
 */
export function decode(
  c: Molmo2Config,
  w: DecoderWeights,
  x: Float32Array,
  cache: KvCache,
  tokenTypeIds: ArrayLike<number>,
  bidirectionalImages: boolean,
): Float32Array {
  return finalNorm(c, w, decodeLayers(c, w, x, cache, tokenTypeIds, bidirectionalImages));
}

/** ln_f over hidden states [n, d]. */
export function finalNorm(c: Molmo2Config, w: DecoderWeights, hidden: Float32Array): Float32Array {
  return rmsNorm(hidden, c.text.hiddenSize, w.lnF, c.text.layerNormEps);
}

/** As `decode`, but returns the last block's output before the final norm (MolmoPoint's point head reads it). */
export function decodeLayers(
  c: Molmo2Config,
  w: DecoderWeights,
  x: Float32Array,
  cache: KvCache,
  tokenTypeIds: ArrayLike<number>,
  bidirectionalImages: boolean,
): Float32Array {
  const { hiddenSize: d, numHeads: H, numKvHeads: Hkv, headDim: D, intermediateSize: I, layerNormEps: eps } = c.text;
  const n = x.length / d;
  const past = cache.length;
  const total = past + n;
  if (tokenTypeIds.length < total) throw new Error(`token_type_ids cover ${tokenTypeIds.length} positions, the sequence has ${total}`);
  const tables = { default: ropeTables(c, past, n, 'default'), scaled: c.text.ropeScaling ? ropeTables(c, past, n, 'scaled') : null };
  const allowed = (i: number, j: number) => j <= past + i || (bidirectionalImages && tokenTypeIds[past + i] === 1 && tokenTypeIds[j] === 1);
  const { normAfter, qkNormType } = c.text;
  const qkv = (H + 2 * Hkv) * D;

  let hidden = x;
  w.blocks.forEach((b, layer) => {
    const { cos, sin } = tables[ropeKindOf(c.text, layer)]!;
    const h = normAfter ? hidden : rmsNorm(hidden, d, b.attnNorm, eps);
    const fused = linear(h, n, d, b.attProj, qkv, b.attProjBias);
    // Qwen3: RMSNorm over each head's D values; OLMo: over the whole q (H·D) and k (Hkv·D) rows.
    const q = rmsNorm(columns(fused, n, qkv, 0, H * D), qkNormType === 'olmo' ? H * D : D, b.qNorm, eps);
    const k = rmsNorm(columns(fused, n, qkv, H * D, Hkv * D), qkNormType === 'olmo' ? Hkv * D : D, b.kNorm, eps);
    const v = columns(fused, n, qkv, (H + Hkv) * D, Hkv * D);
    applyRope(q, n, H, D, cos, sin);
    applyRope(k, n, Hkv, D, cos, sin);
    cache.keys[layer] = concat(cache.keys[layer], k);
    cache.values[layer] = concat(cache.values[layer], v);
    const attn = groupedAttention(q, cache.keys[layer], cache.values[layer], n, total, { numHeads: H, numKvHeads: Hkv, headDim: D }, allowed);
    const attnOut = linear(attn, n, H * D, b.attnOut, d);
    hidden = add(hidden, normAfter ? rmsNorm(attnOut, d, b.attnNorm, eps) : attnOut);

    const f = linear(normAfter ? hidden : rmsNorm(hidden, d, b.ffNorm, eps), n, d, b.ffProj, 2 * I);
    // ff_proj's first half is the "up" projection, the second half the gate: ff_out(silu(gate) · up).
    const act = new Float32Array(n * I);
    for (let r = 0; r < n; r++) for (let i = 0; i < I; i++) act[r * I + i] = silu(f[r * 2 * I + I + i]) * f[r * 2 * I + i];
    const mlpOut = linear(act, n, I, b.ffOut, d);
    hidden = add(hidden, normAfter ? rmsNorm(mlpOut, d, b.ffNorm, eps) : mlpOut);
  });
  cache.length = total;
  return hidden;
}

/** lm_head over its rows: [n, vocab] (Molmo2's base vocabulary; MolmoPoint's base + 128). */
export function logits(c: Molmo2Config, w: DecoderWeights, hidden: Float32Array): Float32Array {
  const d = c.text.hiddenSize;
  return linear(hidden, hidden.length / d, d, w.lmHead, w.lmHead.length / d);
}
