// Reference of MolmoPoint's point head (modeling_molmo_point.py PointPredictor, MolmoPointPatchRope,
// build_vit_embedding): the keys it caches after the prefill (ImageCache) and the three choices it
// scores at each generated token. Plain float32 loops on one sequence (batch 1).
//
//   patch     query patch_q(x̂) · keys patch_k(x̂) of the image tokens, rotated by their index among
//             the pointable tokens; the query by the index of the last patch generated; a learned
//             "no more points" key last; non-pointable tokens (the global view) masked.
//   subpatch  subpatch_q(x̂) · subpatch_k(the chosen patch's pooling window of ViT features).
//   location  subpatch_loc_k(x): 9 logits from the state itself, not x̂.
// x is the decoder's state before its final norm, x̂ = x_norm(x) (RMSNorm) with layer_norm_x.
import type { Molmo2Config } from '../config.ts';
import type { PointConfig } from '../molmopoint/point-config.ts';
import { defaultInverseFrequencies, ropeTable } from '../rope.ts';
import { pointNames } from '../tensors.ts';
import { applyRope } from './decoder.ts';
import { linear, rmsNorm } from './ops.ts';
import type { Weights } from './weights.ts';

export interface PointHeadWeights {
  vitEmbedding: { w: Float32Array; b: Float32Array };
  patchQ: { w: Float32Array; b: Float32Array };
  patchK: { w: Float32Array; b: Float32Array };
  subpatchQ: { w: Float32Array; b: Float32Array };
  subpatchK: { w: Float32Array; b: Float32Array };
  noMorePoints: Float32Array;
  location: { w: Float32Array; b: Float32Array } | null;
  xNorm: Float32Array | null;
}

export async function loadPointHeadWeights(c: Molmo2Config, w: Weights): Promise<PointHeadWeights> {
  const p = pointOf(c);
  const lin = async (name: string) => ({ w: await w.get(`${name}.weight`), b: await w.get(`${name}.bias`) });
  return {
    vitEmbedding: await lin(pointNames.vitEmbedding),
    patchQ: await lin(pointNames.patchQ),
    patchK: await lin(pointNames.patchK),
    subpatchQ: await lin(pointNames.subpatchQ),
    subpatchK: await lin(pointNames.subpatchK),
    noMorePoints: await w.get(pointNames.noMorePoints),
    location: p.patchLocation === '3x3' ? await lin(pointNames.locationK) : null,
    xNorm: p.layerNormX ? await w.get(pointNames.xNorm) : null,
  };
}

export function pointOf(c: Molmo2Config): PointConfig {
  if (!c.point) throw new Error('this config has no point head (not a MolmoPoint checkpoint)');
  return c.point;
}

/** x̂: x_norm(x) (RMSNorm, the decoder's eps) with layer_norm_x, else x / √d (norm_x) or x itself. */
export function pointInput(c: Molmo2Config, h: PointHeadWeights, x: Float32Array): Float32Array {
  const p = pointOf(c);
  const d = c.text.hiddenSize;
  if (h.xNorm) return rmsNorm(x, d, h.xNorm, c.text.layerNormEps);
  return p.normX ? x.map((v) => v / Math.sqrt(d)) : x.slice();
}

/**
 * MolmoPointPatchRope in place on one vector of patch_embed_dim values: rotate-half (element i pairs
 * with i + E/2), inv_freq = 1/θ^(2i/E) and angles in float32.
 */
export function rotatePoint(c: Molmo2Config, v: Float32Array, position: number): void {
  const p = pointOf(c);
  const table = ropeTable({ invFreq: defaultInverseFrequencies(p.patchEmbedDim, p.rotaryTheta), attentionFactor: 1 }, position, 1);
  applyRope(v, 1, 1, p.patchEmbedDim, table.cos, table.sin);
}

/** What the point head keeps after the prefill (the remote code's ImageCache), for one prompt. */
export interface PointKeys {
  /** [nKeys, E]: a key per image token (pooling row), then the "no more points" key when the model has one. */
  patchK: Float32Array;
  /** [nKeys]: 1 where a key may be chosen (pointable image tokens, "no more points"). */
  patchKMask: Uint8Array;
  /** [nPatches]: each image token's index among the pointable tokens up to it, minus one (−1 before the first). */
  imagePosIds: Int32Array;
  /** [nPatches, P, E]: subpatch keys of every pooling window's slots. */
  subpatchK: Float32Array;
  /** [nPatches, P, vitWidth]: the ViT features of each pooling window, zero at padded slots. */
  windows: Float32Array;
  /** [nPatches, P]: the pooling indices (−1 = padding). */
  pooledIdx: Int32Array;
  P: number;
  /** [nPatches, d]: the connector output added to each image token (image_features0). */
  features0: Float32Array;
  nPatches: number;
  nKeys: number;
}

/**
 * The keys after a prefill. `hidden` [S, d] is the prefill's pre-final-norm state, `inputIds` its
 * tokens: image tokens (`<im_patch>` pointable, `<im_low>` not) are the pooling rows in order.
 */
export function buildPointKeys(
  c: Molmo2Config,
  h: PointHeadWeights,
  hidden: Float32Array,
  inputIds: ArrayLike<number>,
  image: { windows: Float32Array; features0: Float32Array; pooledIdx: Int32Array; P: number },
): PointKeys {
  const p = pointOf(c);
  const d = c.text.hiddenSize;
  const E = p.patchEmbedDim;
  const vitWidth = c.vit.hiddenSize * c.adapter.vitLayers.length;
  const { pooledIdx, P } = image;
  const nPatches = pooledIdx.length / P;
  const nKeys = nPatches + (p.noMorePointsClass ? 1 : 0);
  const x = pointInput(c, h, hidden);
  const patchK = new Float32Array(nKeys * E);
  const patchKMask = new Uint8Array(nKeys);
  const imagePosIds = new Int32Array(nPatches);
  let row = 0;
  let pointable = 0;
  for (let i = 0; i < inputIds.length; i++) {
    const id = inputIds[i];
    const indexable = id === c.tokens.imagePatch;
    if (!indexable && id !== p.nonIndexablePatchId) continue;
    if (row >= nPatches) throw new Error(`the prompt has more image tokens than the ${nPatches} pooling rows`);
    if (indexable) pointable++;
    // cumsum(is_indexable) − 1 at this token: a global-view token before any pointable one gets −1.
    const position = pointable - 1;
    const k = linear(x.subarray(i * d, (i + 1) * d), 1, d, h.patchK.w, E, h.patchK.b);
    if (p.rotary === 'one_d') rotatePoint(c, k, position);
    patchK.set(k, row * E);
    patchKMask[row] = indexable ? 1 : 0;
    imagePosIds[row] = position;
    row++;
  }
  if (row !== nPatches) throw new Error(`${nPatches} pooling rows but ${row} image tokens in the prompt`);
  if (p.noMorePointsClass) {
    patchK.set(h.noMorePoints, nPatches * E);
    patchKMask[nPatches] = 1;
  }
  return {
    patchK,
    patchKMask,
    imagePosIds,
    subpatchK: linear(image.windows, nPatches * P, vitWidth, h.subpatchK.w, E, h.subpatchK.b),
    windows: image.windows,
    pooledIdx,
    P,
    features0: image.features0,
    nPatches,
    nKeys,
  };
}

/** Masked patch logits (−1e8, as the remote code's patch mask). */
const PATCH_MASKED = -100000000;
/** Masked subpatch logits and every "not this step" logit of the composed vocabulary. */
export const POINT_SMALL = -100000;

/**
 * Patch logits [nKeys] at one position: x̂ [d]. The query is rotated by the pointable index of
 * `lastPatch` (the last patch id generated before this token, −1 when none: no rotation).
 */
export function patchLogits(c: Molmo2Config, h: PointHeadWeights, keys: PointKeys, xHat: Float32Array, lastPatch: number): Float32Array {
  const p = pointOf(c);
  const d = c.text.hiddenSize;
  const E = p.patchEmbedDim;
  const q = linear(xHat, 1, d, h.patchQ.w, E, h.patchQ.b);
  // rotate_by = image_pos_ids[last] (0 without one), clamped at 0.
  if (p.rotary === 'one_d' && lastPatch >= 0) rotatePoint(c, q, Math.max(0, keys.imagePosIds[lastPatch]));
  const out = new Float32Array(keys.nKeys);
  for (let j = 0; j < keys.nKeys; j++) {
    if (!keys.patchKMask[j]) {
      out[j] = PATCH_MASKED;
      continue;
    }
    let s = 0;
    for (let e = 0; e < E; e++) s += q[e] * keys.patchK[j * E + e];
    out[j] = p.normLogits ? Math.fround(s) / Math.sqrt(E) : s;
  }
  return out;
}

/** Subpatch logits [P] after patch `patch` was generated: x̂ [d]; padded slots −1e5. */
export function subpatchLogits(c: Molmo2Config, h: PointHeadWeights, keys: PointKeys, xHat: Float32Array, patch: number): Float32Array {
  const p = pointOf(c);
  const d = c.text.hiddenSize;
  const E = p.patchEmbedDim;
  const q = linear(xHat, 1, d, h.subpatchQ.w, E, h.subpatchQ.b);
  const out = new Float32Array(keys.P);
  for (let s = 0; s < keys.P; s++) {
    if (keys.pooledIdx[patch * keys.P + s] < 0) {
      out[s] = POINT_SMALL;
      continue;
    }
    let dot = 0;
    const at = (patch * keys.P + s) * E;
    for (let e = 0; e < E; e++) dot += q[e] * keys.subpatchK[at + e];
    // Divided by √E, the patch keys' width, as the remote code does.
    out[s] = p.normLogits ? Math.fround(dot) / Math.sqrt(E) : dot;
  }
  return out;
}

/** Location logits [9] after a subpatch: subpatch_loc_k of the pre-norm state x [d] (not x̂). */
export function locationLogits(c: Molmo2Config, h: PointHeadWeights, x: Float32Array): Float32Array {
  if (!h.location) throw new Error('this MolmoPoint has no 3×3 location head (patch_location null)');
  return linear(x, 1, c.text.hiddenSize, h.location.w, 9, h.location.b);
}

/** The input embedding of a generated subpatch: build_vit_embedding(ViT features of slot `slot` of patch `patch`'s window). */
export function subpatchEmbedding(c: Molmo2Config, h: PointHeadWeights, keys: PointKeys, patch: number, slot: number): Float32Array {
  const vitWidth = c.vit.hiddenSize * c.adapter.vitLayers.length;
  const at = (patch * keys.P + slot) * vitWidth;
  return linear(keys.windows.subarray(at, at + vitWidth), 1, vitWidth, h.vitEmbedding.w, c.text.hiddenSize, h.vitEmbedding.b);
}
