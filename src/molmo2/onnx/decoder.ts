// Portable decoder graph (Qwen3 as Molmo2 stores it) with the I/O of io.ts, built from standard ONNX
// ops plus com.microsoft MatMulNBits / MultiHeadAttention / SimplifiedLayerNormalization, so it runs
// on onnxruntime's CPU EP (Node and wasm) and on the WebGPU EP.
//
//   embeddings  concat(embedding, new_embedding)[input_ids] + image_features at the <im_patch> tokens
//   blocks      pre-norm; fused q|k|v; per-head q/k RMSNorm; rotate-half RoPE at positions P..P+S−1;
//               grouped-query attention (query head i reads KV head ⌊i / n_rep⌋) over past + new keys
//               under allowed[q,k] = k ≤ q OR (tt[q] = 1 AND tt[k] = 1); SwiGLU MLP (ff_proj = up | gate)
//   output      final RMSNorm and lm_head on the last position only; present K/V = past ++ new
//
// The rule above is Molmo2's prefill mask; with one new token (a decode step) every earlier key is
// allowed, which is the causal mask. Norms, RoPE, softmax and attention run in float32; the KV cache
// and the residual stream use the variant's activation type.
import { names } from '../tensors.ts';
import type { CheckedWeights } from './checked-weights.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS } from './io.ts';
import { float, ONNX_TYPE, type Graph } from './graph.ts';
import { cast, DEFAULT_Q4, floatTable, gatherRows, linear, rmsNorm, silu, type FloatTable, type FloatType, type Precision, type Q4Settings } from './layers.ts';

export interface DecoderOptions {
  precision: Precision;
  q4?: Q4Settings;
  /** 'molmo2' (default): the prefill mask above. 'causal' drops the image rule (tests only). */
  mask?: 'molmo2' | 'causal';
  /** 'last' (default, the io.ts contract): logits [1, vocab]. 'all': [1, S, vocab] (tests only). */
  logits?: 'last' | 'all';
}

/** Builds a decoder into `g`; decoder-webgpu.ts exports one of these as `buildDecoder`. */
export type DecoderBuilder = (g: Graph, w: CheckedWeights, o: DecoderOptions) => Promise<void>;

/** Masked attention scores: far below any real score, finite so a fully masked row gives no NaN. */
export const MASKED = -1e30;

export const buildDecoder: DecoderBuilder = async (g, w, o) => {
  const t = w.config.text;
  const { act } = o.precision;
  const q4 = o.q4 ?? DEFAULT_Q4;
  if (t.numLayers < 1) throw new Error('the decoder needs at least one layer');

  const inputIds = g.input(DECODER_INPUTS.inputIds, 'int64', [1, 'sequence_length']);
  const imageFeatures = g.input(DECODER_INPUTS.imageFeatures, 'float32', ['num_image_features', t.hiddenSize]);
  const tokenTypeIds = g.input(DECODER_INPUTS.tokenTypeIds, 'int64', [1, 'total_sequence_length']);
  const kvDims = [1, t.numKvHeads, 'past_sequence_length', t.headDim];
  const past = Array.from({ length: t.numLayers }, (_, i) => ({
    key: g.input(DECODER_INPUTS.pastKey(i), act, kvDims),
    value: g.input(DECODER_INPUTS.pastValue(i), act, kvDims),
  }));

  let x = await embedTokens(g, w, inputIds, imageFeatures, o.precision);
  const pos = sequencePositions(g, inputIds, past[0].key);
  const bias = attentionBias(g, tokenTypeIds, pos, o.mask ?? 'molmo2');
  const rope = ropeTables(g, pos.query, t.headDim, t.ropeTheta);

  for (let i = 0; i < t.numLayers; i++) {
    const layer = await decoderLayer(g, w, i, x, past[i], bias, rope, o.precision, q4);
    x = layer.x;
    const presentDims = [1, t.numKvHeads, 'total_sequence_length', t.headDim];
    g.output(layer.presentKey, act, presentDims, DECODER_OUTPUTS.presentKey(i));
    g.output(layer.presentValue, act, presentDims, DECODER_OUTPUTS.presentValue(i));
  }

  const all = o.logits === 'all';
  const last = all ? x : g.op('Slice', [x, g.int64([-1]), g.int64([Number.MAX_SAFE_INTEGER]), g.int64([1])]);
  const h = await rmsNorm(g, last, { name: 'model.transformer.ln_f', weight: await w.get(names.finalNorm), eps: t.layerNormEps, act });
  const lmHead = w.has(names.lmHead) ? w.ref(names.lmHead) : w.ref(names.embedding, 0, t.vocabSize);
  let logits = await linear(g, h, { name: 'lm_head', weight: lmHead, N: t.vocabSize, K: t.hiddenSize, format: o.precision.linear, act, q4 });
  if (!all) logits = g.op('Reshape', [logits, g.int64([1, t.vocabSize])]);
  g.output(cast(g, logits, act, 'float32'), 'float32', all ? [1, 'sequence_length', t.vocabSize] : [1, t.vocabSize], DECODER_OUTPUTS.logits);
};

/** The split-vocabulary table concat(embedding, new_embedding): [vocab + additional, d]. */
export async function embeddingTable(g: Graph, w: CheckedWeights, type: FloatType): Promise<FloatTable> {
  const pieces = [w.ref(names.embedding), w.ref(names.newEmbedding)];
  return floatTable(g, 'model.transformer.wte.table', pieces, w.config.text.hiddenSize, type);
}

/**
 * Token embeddings [1, S, d] in the activation type, with row r of image_features added to the r-th
 * <im_patch> token of input_ids (an addition, as the reference does). A zero row appended to the
 * features serves every other token, so F = 0 (text, decode steps) needs no special case.
 */
export async function embedTokens(g: Graph, w: CheckedWeights, inputIds: string, imageFeatures: string, p: Precision): Promise<string> {
  const d = w.config.text.hiddenSize;
  const table = await embeddingTable(g, w, p.table);
  const x = cast(g, gatherRows(g, table, inputIds), p.table, p.act);

  const features = g.op('Concat', [cast(g, imageFeatures, 'float32', p.act), g.constant(p.act, [1, d], p.act === 'float16' ? new Uint16Array(d) : new Float32Array(d), 'zero_row')], { axis: 0 });
  const isPatch = g.op('Equal', [inputIds, g.constant('int64', [], [w.config.tokens.imagePatch], 'image_patch_id')]); // [1, S]
  const ordinal = g.op('CumSum', [g.op('Cast', [isPatch], { to: ONNX_TYPE.int64 }), g.scalarInt64(1)]); // 1-based among patches
  const count = g.op('Shape', [imageFeatures], { start: 0, end: 1 }); // [1] = F, the zero row's index
  const row = g.op('Min', [g.op('Where', [isPatch, g.op('Sub', [ordinal, g.scalarInt64(1)]), count]), count]);
  return g.op('Add', [x, g.op('Gather', [features, row], { axis: 0 })]);
}

export interface Positions {
  /** Absolute positions of the new tokens, P .. P+S−1: int64 [S]. */
  query: string;
  /** Positions of every key, 0 .. P+S−1: int64 [T]. */
  key: string;
}

/** Positions from the shapes of input_ids ([1, S]) and one past key ([1, kv, P, D]). */
export function sequencePositions(g: Graph, inputIds: string, pastKey: string): Positions {
  const S = g.op('Shape', [inputIds], { start: 1, end: 2 });
  const P = g.op('Shape', [pastKey], { start: 2, end: 3 });
  const zero = g.int64([0]);
  const scalar = (v: string) => g.op('Squeeze', [v, zero]);
  const T = scalar(g.op('Add', [P, S]));
  const one = g.scalarInt64(1);
  return { query: g.op('Range', [scalar(P), T, one]), key: g.op('Range', [g.scalarInt64(0), T, one]) };
}

/**
 * Additive float32 attention bias [1, 1, S, T]: 0 where allowed, MASKED elsewhere.
 * allowed[q, k] = k ≤ q OR (tt[q] = 1 AND tt[k] = 1); 'causal' keeps only the first term.
 * Only the 1-D position and type vectors are int64; everything [S, T]-sized is float32 arithmetic,
 * which the WebGPU EP runs on the GPU (it places int64 math on the CPU).
 */
export function attentionBias(g: Graph, tokenTypeIds: string, pos: Positions, mode: 'molmo2' | 'causal'): string {
  const toFloat = (x: string) => g.op('Cast', [x], { to: ONNX_TYPE.float32 });
  const keyRow = g.op('Unsqueeze', [toFloat(pos.key), g.int64([0])]); // [1, T]
  const queryCol = g.op('Unsqueeze', [toFloat(pos.query), g.int64([1])]); // [S, 1] (positions < 2^24: exact)
  let allowed = toFloat(g.op('LessOrEqual', [keyRow, queryCol])); // [S, T], 1 = allowed
  if (mode === 'molmo2') {
    const image = toFloat(g.op('Equal', [g.op('Reshape', [tokenTypeIds, g.int64([-1])]), g.scalarInt64(1)])); // [T]
    const imageQuery = g.op('Gather', [image, pos.query], { axis: 0 }); // [S]
    const both = g.op('Mul', [g.op('Unsqueeze', [imageQuery, g.int64([1])]), g.op('Unsqueeze', [image, g.int64([0])])]);
    allowed = g.op('Max', [allowed, both]);
  }
  const bias = g.op('Mul', [g.op('Sub', [allowed, g.scalar('float32', 1)]), g.scalar('float32', -MASKED)]); // 0 or MASKED
  return g.op('Unsqueeze', [bias, g.int64([0, 1])]);
}

export interface RopeTables {
  /** float32 [1, S, 1, D/2], broadcast over [1, S, heads, D/2]. */
  cos: string;
  sin: string;
  headDim: number;
}

/** inv_freq[i] = 1 / θ^(2i/D) in float32, as the HF rotary module computes it. */
export function inverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(theta ** Math.fround((2 * i) / headDim));
  return inv;
}

/** cos/sin of position · inv_freq for the new positions (float32). */
export function ropeTables(g: Graph, queryPositions: string, headDim: number, theta: number): RopeTables {
  if (headDim % 2 !== 0) throw new Error(`RoPE needs an even head_dim, got ${headDim}`);
  const invFreq = g.constant('float32', [1, headDim / 2], inverseFrequencies(headDim, theta), 'rope_inv_freq');
  const angles = g.op('Mul', [g.op('Unsqueeze', [g.op('Cast', [queryPositions], { to: ONNX_TYPE.float32 }), g.int64([1])]), invFreq]); // [S, D/2]
  const shape = g.int64([1, -1, 1, headDim / 2]);
  return { cos: g.op('Reshape', [g.op('Cos', [angles]), shape]), sin: g.op('Reshape', [g.op('Sin', [angles]), shape]), headDim };
}

/** Rotate-half RoPE on float32 [1, S, heads, D]: (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin). */
export function applyRope(g: Graph, x: string, r: RopeTables): string {
  const half = r.headDim / 2;
  const [x1, x2] = g.node('Split', [x, g.int64([half, half])], { attrs: { axis: -1 }, outputs: 2 });
  const first = g.op('Sub', [g.op('Mul', [x1, r.cos]), g.op('Mul', [x2, r.sin])]);
  const second = g.op('Add', [g.op('Mul', [x2, r.cos]), g.op('Mul', [x1, r.sin])]);
  return g.op('Concat', [first, second], { axis: -1 });
}

/**
 * Grouped-query attention with com.microsoft.MultiHeadAttention on the un-expanded KV heads: the
 * n_rep query heads sharing a KV head are folded into the query axis ([1, S, H·D] → [1, n_rep·S,
 * Hkv·D]; row (g, s) holds head Hkv-group h's query h·n_rep + g at position s) and the bias rows are
 * tiled to match. q: float32 [1, S, H·D]; keys/values: float32 [1, Hkv, T, D]; bias [1, 1, S, T].
 * Returns float32 [1, S, H·D].
 */
export function groupedQueryAttention(
  g: Graph,
  q: string,
  keys: string,
  values: string,
  bias: string,
  heads: { numHeads: number; numKvHeads: number; headDim: number },
  name: string,
): string {
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = heads;
  const rep = H / Hkv;
  const q5 = g.op('Reshape', [q, g.int64([0, 0, Hkv, rep, D])]); // [1, S, Hkv, rep, D]
  const folded = g.op('Reshape', [g.op('Transpose', [q5], { perm: [0, 3, 1, 2, 4] }), g.int64([0, -1, Hkv * D])]); // [1, rep·S, Hkv·D]
  const tiled = rep === 1 ? bias : g.op('Tile', [bias, g.int64([1, 1, rep, 1])]);
  const out = g.ms('MultiHeadAttention', [folded, keys, values, '', '', tiled], { num_heads: Hkv, scale: float(1 / Math.sqrt(D)) }, name);
  const o5 = g.op('Reshape', [out, g.int64([0, rep, -1, Hkv, D])]); // [1, rep, S, Hkv, D]
  return g.op('Reshape', [g.op('Transpose', [o5], { perm: [0, 2, 3, 1, 4] }), g.int64([0, -1, H * D])]);
}

/** Builders for the linear layers and RMSNorms of decoder block i, reading its weights by tensor suffix. */
export function blockOps(g: Graph, w: CheckedWeights, i: number, p: Precision, q4: Q4Settings) {
  const b = names.block(i);
  const { act } = p;
  const eps = w.config.text.layerNormEps;
  const lin = async (input: string, tensor: string, N: number, K: number, withBias = false) =>
    linear(g, input, {
      name: `${b}.${tensor}`,
      weight: w.ref(`${b}.${tensor}.weight`),
      N,
      K,
      bias: withBias ? await w.get(`${b}.${tensor}.bias`) : null,
      format: p.linear,
      act,
      q4,
    });
  const norm = async (input: string, tensor: string, out: FloatType = act) => rmsNorm(g, input, { name: `${b}.${tensor}`, weight: await w.get(`${b}.${tensor}.weight`), eps, act, out });
  const { hiddenSize: d, numHeads: H, numKvHeads: Hkv, headDim: D, qkvBias } = w.config.text;
  /** Pre-attention RMSNorm, fused att_proj and its split into q, k, v ([1, S, heads·D] each). */
  const qkv = async (x: string) => {
    const fused = await lin(await norm(x, 'attn_norm'), 'self_attn.att_proj', (H + 2 * Hkv) * D, d, qkvBias);
    return g.node('Split', [fused, g.int64([H * D, Hkv * D, Hkv * D])], { attrs: { axis: -1 }, outputs: 3 });
  };
  return { lin, norm, qkv };
}

/** One pre-norm block; returns the new residual stream and the layer's present K/V. */
async function decoderLayer(
  g: Graph,
  w: CheckedWeights,
  i: number,
  x: string,
  past: { key: string; value: string },
  bias: string,
  rope: RopeTables,
  p: Precision,
  q4: Q4Settings,
): Promise<{ x: string; presentKey: string; presentValue: string }> {
  const { hiddenSize: d, numHeads: H, numKvHeads: Hkv, headDim: D, intermediateSize: I } = w.config.text;
  const { act } = p;
  const b = names.block(i);
  const { lin, norm, qkv } = blockOps(g, w, i, p, q4);
  const [q, k, v] = await qkv(x);
  const perHead = (heads: number) => g.int64([0, 0, heads, D]);
  const toBnsh = (y: string) => g.op('Transpose', [y], { perm: [0, 2, 1, 3] }); // [1, S, h, D] → [1, h, S, D]

  const qr = applyRope(g, await norm(g.op('Reshape', [q, perHead(H)]), 'self_attn.q_norm', 'float32'), rope); // [1, S, H, D] fp32
  const kr = applyRope(g, await norm(g.op('Reshape', [k, perHead(Hkv)]), 'self_attn.k_norm', 'float32'), rope);
  const presentKey = g.op('Concat', [past.key, cast(g, toBnsh(kr), 'float32', act)], { axis: 2 });
  const presentValue = g.op('Concat', [past.value, toBnsh(g.op('Reshape', [v, perHead(Hkv)]))], { axis: 2 });

  const attn = groupedQueryAttention(
    g,
    g.op('Reshape', [qr, g.int64([0, 0, H * D])]),
    cast(g, presentKey, act, 'float32'),
    cast(g, presentValue, act, 'float32'),
    bias,
    { numHeads: H, numKvHeads: Hkv, headDim: D },
    `${b}.self_attn.attention`,
  );
  x = g.op('Add', [x, await lin(cast(g, attn, 'float32', act), 'self_attn.attn_out', d, H * D)]);

  // ff_proj's first half is the "up" projection, the second half the gate: ff_out(silu(gate) · up).
  const f = await lin(await norm(x, 'ff_norm'), 'mlp.ff_proj', 2 * I, d);
  const [up, gate] = g.node('Split', [f, g.int64([I, I])], { attrs: { axis: -1 }, outputs: 2 });
  x = g.op('Add', [x, await lin(g.op('Mul', [silu(g, gate), up]), 'mlp.ff_out', d, I)]);
  return { x, presentKey, presentValue };
}
