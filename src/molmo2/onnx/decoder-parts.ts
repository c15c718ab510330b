// The parts both decoder graphs (decoder.ts, decoder-webgpu.ts) are made of: token embeddings with
// the image features, positions, Molmo2's attention bias, RoPE, grouped-query attention, the start
// and end of a layer around its attention, and the final norm + LM head. Node scopes follow
// onnxruntime-genai: /model/embed_tokens, /model/layers.{i}/attn/…, /model/norm, /lm_head.
// Both block layouts: pre-norm (Qwen3: Molmo2-4B, -8B) and post-norm (OLMo-3: Molmo2-O-7B, whose
// attention and MLP read the residual stream itself and whose norms follow them, before each add).
import type { TextConfig } from '../config.ts';
import { ropeFrequencies, type RopeKind } from '../rope.ts';
import { names } from '../tensors.ts';
import type { CheckedWeights } from './checked-weights.ts';
import { float, ONNX_TYPE, type Graph } from './graph.ts';
import { cast, floatTable, gatherRows, guardedLinear, linear, MASKED, rmsNorm, silu, type FloatTable, type FloatType, type Precision, type Q4Settings } from './layers.ts';

/** Node scope of decoder layer i. */
export const layerScope = (i: number): string => `/model/layers.${i}`;

/** The split-vocabulary table concat(embedding, new_embedding): [vocab + additional, d]. */
export async function embeddingTable(g: Graph, w: CheckedWeights, type: FloatType): Promise<FloatTable> {
  const pieces = [w.ref(names.embedding), w.ref(names.newEmbedding)];
  return floatTable(g, 'model.transformer.wte.table', pieces, w.config.text.hiddenSize, type);
}

/** Token embeddings [1, S, d] from a float table plus the image features: the float32 residual stream. */
export async function embedTokens(g: Graph, w: CheckedWeights, inputIds: string, imageFeatures: string, p: Precision): Promise<string> {
  return g.scope('/model/embed_tokens', async () => {
    const table = await embeddingTable(g, w, p.table);
    const x = cast(g, gatherRows(g, table, inputIds), p.table, 'float32');
    return addImageFeatures(g, w, x, inputIds, imageFeatures);
  });
}

/**
 * Adds row r of image_features to the embedding of the r-th <im_patch> token of input_ids (an
 * addition, as the reference does). A zero row appended to the features serves every other token,
 * so F = 0 (text, decode steps) needs no special case; surplus patches clamp to the zero row.
 */
export function addImageFeatures(g: Graph, w: CheckedWeights, x: string, inputIds: string, imageFeatures: string): string {
  const d = w.config.text.hiddenSize;
  return g.scope('image_features', () => {
    const zeroRow = g.constant('float32', [1, d], new Float32Array(d), 'zero_row');
    const features = g.op('Concat', [imageFeatures, zeroRow], { axis: 0 });
    const isPatch = g.op('Equal', [inputIds, g.constant('int64', [], [w.config.tokens.imagePatch], 'image_patch_id')]); // [1, S]
    // Where, not a Cast of the bool: onnxruntime runs this int64 index math on the CPU, and a Cast it
    // places on the GPU would be read back at every decode step.
    const ordinal = g.op('CumSum', [g.op('Where', [isPatch, g.scalarInt64(1), g.scalarInt64(0)]), g.scalarInt64(1)]); // 1-based among patches
    const count = g.op('Shape', [imageFeatures], { start: 0, end: 1 }); // [1] = F, the zero row's index
    const row = g.op('Min', [g.op('Where', [isPatch, g.op('Sub', [ordinal, g.scalarInt64(1)]), count]), count]);
    return g.op('Add', [x, g.op('Gather', [features, row], { axis: 0 })]);
  });
}

export interface Positions {
  /** Absolute positions of the new tokens, P .. P+S−1: int64 [S]. */
  query: string;
  /** Positions of every key, 0 .. P+S−1: int64 [T]. */
  key: string;
}

/** The key side of Molmo2's mask, float32 on the GPU, made once per prefill. */
export interface MaskKeys {
  /** Key positions [1, T]. */
  position: string;
  /** For the 'molmo2' rule: 1 for image keys [T], and the bias an image query gives each key [1, T]. */
  image: { flag: string; bias: string } | null;
}

/** Key positions (int64 [T]) and, for the 'molmo2' rule, which keys are image tokens. */
export function maskKeys(g: Graph, tokenTypeIds: string, keyPositions: string, mode: 'molmo2' | 'causal'): MaskKeys {
  const position = g.op('Unsqueeze', [g.op('Cast', [keyPositions], { to: ONNX_TYPE.float32 }), g.int64([0])]); // [1, T] (positions < 2^24: exact)
  if (mode === 'causal') return { position, image: null };
  const isImage = g.op('Equal', [g.op('Reshape', [tokenTypeIds, g.int64([-1])]), g.scalarInt64(1)]); // bool [T]
  const flag = g.op('Cast', [isImage], { to: ONNX_TYPE.float32 });
  const bias = g.op('Unsqueeze', [g.op('Where', [isImage, g.scalar('float32', 0), g.scalar('float32', MASKED)]), g.int64([0])]);
  return { position, image: { flag, bias } };
}

/**
 * Additive float32 attention bias [1, 1, R·S, T] of the queries at `queryPositions` (int64 [S]), their
 * rows repeated `repeat` times (R; row r·S + s is query s, the layout of groupedQueryAttention's folded
 * query heads): 0 where allowed, MASKED elsewhere. allowed[q, k] = k ≤ q OR (tt[q] = 1 AND tt[k] = 1);
 * without image keys only the first term. The [R·S, T] values are made by three kernels (a compare
 * and two selects) and nothing else of that size; they run on the GPU (the WebGPU EP places int64
 * math on the CPU, so only the 1-D position vectors are int64).
 */
export function maskRows(g: Graph, keys: MaskKeys, queryPositions: string, repeat = 1): string {
  const rows = repeat === 1 ? queryPositions : g.op('Tile', [queryPositions, g.int64([repeat])]); // int64 [R·S]
  const queryCol = g.op('Unsqueeze', [g.op('Cast', [rows], { to: ONNX_TYPE.float32 }), g.int64([1])]); // [R·S, 1]
  const causal = g.op('LessOrEqual', [keys.position, queryCol]); // bool [R·S, T]
  const masked = g.scalar('float32', MASKED);
  let later = masked;
  if (keys.image) {
    const imageQuery = g.op('Unsqueeze', [g.op('Cast', [g.op('Gather', [keys.image.flag, rows], { axis: 0 })], { to: ONNX_TYPE.bool }), g.int64([1])]); // [R·S, 1]
    later = g.op('Where', [imageQuery, keys.image.bias, masked]); // an image query sees every image key
  }
  const bias = g.op('Where', [causal, g.scalar('float32', 0), later]);
  return g.op('Unsqueeze', [bias, g.int64([0, 1])]);
}

/** Molmo2's (or the causal) attention bias [1, 1, S, T] of the whole prefill: maskRows over maskKeys. */
export function attentionBias(g: Graph, tokenTypeIds: string, pos: Positions, mode: 'molmo2' | 'causal'): string {
  return g.scope('/model/attn_mask', () => maskRows(g, maskKeys(g, tokenTypeIds, pos.key, mode), pos.query));
}

export interface RopeTables {
  /** float32 [1, S, 1, D/2], broadcast over [1, S, heads, D/2]. */
  cos: string;
  sin: string;
  headDim: number;
}

/**
 * cos/sin of position · inv_freq for the new positions (float32), for the `kind` of table a layer
 * reads (YaRN's scaled table: times its attention factor, as the reference multiplies cos and sin).
 */
export function ropeTables(g: Graph, queryPositions: string, text: TextConfig, kind: RopeKind = 'default'): RopeTables {
  const headDim = text.headDim;
  if (headDim % 2 !== 0) throw new Error(`RoPE needs an even head_dim, got ${headDim}`);
  const f = ropeFrequencies(text, kind);
  return g.scope(kind === 'default' ? '/model/rotary' : '/model/rotary_scaled', () => {
    const invFreq = g.constant('float32', [1, headDim / 2], f.invFreq, kind === 'default' ? 'rope_inv_freq' : 'rope_scaled_inv_freq');
    const angles = g.op('Mul', [g.op('Unsqueeze', [g.op('Cast', [queryPositions], { to: ONNX_TYPE.float32 }), g.int64([1])]), invFreq]); // [S, D/2]
    const shape = g.int64([1, -1, 1, headDim / 2]);
    const scaled = (y: string) => (f.attentionFactor === 1 ? y : g.op('Mul', [y, g.scalar('float32', f.attentionFactor)]));
    return { cos: g.op('Reshape', [scaled(g.op('Cos', [angles])), shape]), sin: g.op('Reshape', [scaled(g.op('Sin', [angles])), shape]), headDim };
  });
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
 * tiled to match (or made with the folded rows already: maskRows with repeat n_rep, `biasRows` 'folded').
 * q: float32 [1, S, H·D]; keys/values: float32 [1, Hkv, T, D]; bias [1, 1, S, T] or [1, 1, n_rep·S, T].
 * Returns float32 [1, S, H·D].
 */
export function groupedQueryAttention(g: Graph, q: string, keys: string, values: string, bias: string, heads: { numHeads: number; numKvHeads: number; headDim: number }, biasRows: 'per-query' | 'folded' = 'per-query'): string {
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = heads;
  const rep = H / Hkv;
  const q5 = g.op('Reshape', [q, g.int64([0, 0, Hkv, rep, D])]); // [1, S, Hkv, rep, D]
  const folded = g.op('Reshape', [g.op('Transpose', [q5], { perm: [0, 3, 1, 2, 4] }), g.int64([0, -1, Hkv * D])]); // [1, rep·S, Hkv·D]
  const tiled = rep === 1 || biasRows === 'folded' ? bias : g.op('Tile', [bias, g.int64([1, 1, rep, 1])]);
  const out = g.ms('MultiHeadAttention', [folded, keys, values, '', '', tiled], { num_heads: Hkv, scale: float(1 / Math.sqrt(D)) });
  const o5 = g.op('Reshape', [out, g.int64([0, rep, -1, Hkv, D])]); // [1, rep, S, Hkv, D]
  return g.op('Reshape', [g.op('Transpose', [o5], { perm: [0, 2, 3, 1, 4] }), g.int64([0, -1, H * D])]);
}

/** What every layer of a decoder is built with. */
export interface LayerSettings {
  w: CheckedWeights;
  p: Precision;
  q4: Q4Settings;
}

/** A linear layer of decoder block i, read by its tensor suffix, with its nodes under `scope`. */
async function blockLinear(g: Graph, s: LayerSettings, i: number, scope: string, input: string, tensor: string, N: number, K: number, withBias = false): Promise<string> {
  const b = names.block(i);
  const bias = withBias ? await s.w.get(`${b}.${tensor}.bias`) : null;
  return g.scope(scope, () => linear(g, input, { name: `${b}.${tensor}`, weight: s.w.ref(`${b}.${tensor}.weight`), N, K, bias, format: s.p.linear, act: s.p.act, q4: s.q4 }));
}

/**
 * An RMSNorm of decoder block i over `input` (of type `from`), computed in float32 and returned in
 * `out`, its nodes under `scope`.
 */
async function blockNorm(g: Graph, s: LayerSettings, i: number, scope: string, input: string, tensor: string, from: FloatType, out: FloatType): Promise<string> {
  const b = names.block(i);
  const weight = await s.w.get(`${b}.${tensor}.weight`);
  return g.scope(scope, () => rmsNorm(g, input, { name: `${b}.${tensor}`, weight, eps: s.w.config.text.layerNormEps, act: from, out }));
}

/** Layer i's input RMSNorm of the float32 residual stream x, returned in the activation type. */
export function inputNorm(g: Graph, s: LayerSettings, i: number, x: string): Promise<string> {
  return blockNorm(g, s, i, 'input_layernorm', x, 'attn_norm', 'float32', s.p.act);
}

/**
 * residual + delta and its RMSNorm in one com.microsoft.SkipSimplifiedLayerNormalization (float32):
 * `sum` is the new residual stream (float32), `normed` its norm in the activation type. The same
 * values as an Add followed by the norm, in one kernel.
 */
export async function skipNorm(g: Graph, s: LayerSettings, i: number, scope: string, residual: string, delta: string, tensor: string): Promise<{ normed: string; sum: string }> {
  const b = names.block(i);
  const weight = await s.w.get(`${b}.${tensor}.weight`);
  const w = await g.weight(`${b}.${tensor}.weight`, 'float32', [weight.length], weight);
  return g.scope(scope, () => {
    const [y, , , sum] = g.node('SkipSimplifiedLayerNormalization', [residual, delta, w], { domain: 'com.microsoft', attrs: { epsilon: float(s.w.config.text.layerNormEps) }, outputs: 4 });
    return { normed: cast(g, y, 'float32', s.p.act), sum };
  });
}

/**
 * A linear layer of block i over the layer's input: the normed input in the activation type
 * (pre-norm), or the float32 residual stream itself (post-norm), which no norm bounds and so enters
 * through the fp16 guard. Returns the activation type.
 */
async function blockInputLinear(g: Graph, s: LayerSettings, i: number, scope: string, input: string, tensor: string, N: number, K: number, withBias = false): Promise<string> {
  if (!s.w.config.text.normAfter) return blockLinear(g, s, i, scope, input, tensor, N, K, withBias);
  const b = names.block(i);
  const bias = withBias ? await s.w.get(`${b}.${tensor}.bias`) : null;
  const y = await g.scope(scope, () => guardedLinear(g, input, { name: `${b}.${tensor}`, weight: s.w.ref(`${b}.${tensor}.weight`), N, K, bias, format: s.p.linear, act: s.p.act, q4: s.q4 }));
  return cast(g, y, 'float32', s.p.act);
}

/**
 * Layer i's attention inputs from the layer's input (see blockInputLinear): fused att_proj split into
 * q | k | v and the q/k RMSNorms — per head (Qwen3) or over the whole projection (OLMo) — then RoPE
 * (float32) when `rope` is given. Returns q [1, S, H, D] and k [1, S, Hkv, D] in float32, and
 * v [1, S, Hkv·D] in the activation type. Call it inside the layer's scope.
 */
export async function attentionInputsFromNormed(g: Graph, s: LayerSettings, i: number, normed: string, rope: RopeTables | null): Promise<{ q: string; k: string; v: string }> {
  const { hiddenSize: d, numHeads: H, numKvHeads: Hkv, headDim: D, qkvBias, qkNormType } = s.w.config.text;
  return g.scope('attn', async () => {
    const fused = await blockInputLinear(g, s, i, 'qkv', normed, 'self_attn.att_proj', (H + 2 * Hkv) * D, d, qkvBias);
    const [q, k, v] = g.node('Split', [fused, g.int64([H * D, Hkv * D, Hkv * D])], { attrs: { axis: -1 }, outputs: 3 });
    const perHead = (y: string, heads: number) => g.op('Reshape', [y, g.int64([0, 0, heads, D])]);
    const norm = async (y: string, heads: number, scope: string, tensor: string) =>
      qkNormType === 'olmo'
        ? perHead(await blockNorm(g, s, i, scope, y, tensor, s.p.act, 'float32'), heads)
        : blockNorm(g, s, i, scope, perHead(y, heads), tensor, s.p.act, 'float32');
    const qn = await norm(q, H, 'q_norm', 'self_attn.q_norm');
    const qr = rope ? g.scope('q_rotary', () => applyRope(g, qn, rope)) : qn;
    const kn = await norm(k, Hkv, 'k_norm', 'self_attn.k_norm');
    const kr = rope ? g.scope('k_rotary', () => applyRope(g, kn, rope)) : kn;
    return { q: qr, k: kr, v };
  });
}

/**
 * The start of layer i (x: the float32 residual stream), up to the attention: the input RMSNorm
 * (pre-norm only), then attentionInputsFromNormed with RoPE. Call it inside the layer's scope.
 */
export async function attentionInputs(g: Graph, s: LayerSettings, i: number, x: string, rope: RopeTables): Promise<{ q: string; k: string; v: string }> {
  return attentionInputsFromNormed(g, s, i, s.w.config.text.normAfter ? x : await inputNorm(g, s, i, x), rope);
}

/** o_proj of the attention output (float32 [1, S, H·D]), returned in float32. Call it inside the layer's scope. */
export async function attentionOutput(g: Graph, s: LayerSettings, i: number, attn: string): Promise<string> {
  const { hiddenSize: d, numHeads: H, headDim: D } = s.w.config.text;
  const { act } = s.p;
  const projected = await g.scope('attn', () => blockLinear(g, s, i, 'o_proj', cast(g, attn, 'float32', act), 'self_attn.attn_out', d, H * D));
  return cast(g, projected, act, 'float32');
}

/**
 * The SwiGLU MLP of layer i over its input (see blockInputLinear), returned in float32. The
 * product is formed in float32 and enters ff_out through the fp16 guard (guardedLinear), so fp16
 * variants cannot overflow there. Call it inside the layer's scope.
 */
export async function mlp(g: Graph, s: LayerSettings, i: number, normed: string): Promise<string> {
  const { hiddenSize: d, intermediateSize: I } = s.w.config.text;
  const { act } = s.p;
  return g.scope('mlp', async () => {
    // ff_proj's first half is the "up" projection, the second half the gate: ff_out(silu(gate) · up).
    const f = await blockInputLinear(g, s, i, 'up_gate_proj', normed, 'mlp.ff_proj', 2 * I, d);
    const [up, gate] = g.node('Split', [f, g.int64([I, I])], { attrs: { axis: -1 }, outputs: 2 }).map((y) => cast(g, y, act, 'float32'));
    const product = g.scope('act_fn', () => g.op('Mul', [silu(g, gate), up]));
    const b = names.block(i);
    return g.scope('down_proj', () => guardedLinear(g, product, { name: `${b}.mlp.ff_out`, weight: s.w.ref(`${b}.mlp.ff_out.weight`), N: d, K: I, format: s.p.linear, act, q4: s.q4 }));
  });
}

/**
 * The end of layer i, after the attention (float32 [1, S, H·D]): o_proj and residual, then the MLP
 * with its residual. Pre-norm: the MLP reads the post-attention RMSNorm of the stream. Post-norm:
 * attn_norm normalizes o_proj's output and ff_norm the MLP's, each before its add, and the MLP reads
 * the stream itself. The residual stream stays float32. Call it inside the layer's scope.
 */
export async function attentionOutputAndMlp(g: Graph, s: LayerSettings, i: number, x: string, attn: string): Promise<string> {
  if (s.w.config.text.normAfter) {
    const h = g.op('Add', [x, await blockNorm(g, s, i, 'post_attention_layernorm', await attentionOutput(g, s, i, attn), 'attn_norm', 'float32', 'float32')]);
    return g.op('Add', [h, await blockNorm(g, s, i, 'post_feedforward_layernorm', await mlp(g, s, i, h), 'ff_norm', 'float32', 'float32')]);
  }
  const h = g.op('Add', [x, await attentionOutput(g, s, i, attn)]);
  const normed = await blockNorm(g, s, i, 'post_attention_layernorm', h, 'ff_norm', 'float32', s.p.act);
  return g.op('Add', [h, await mlp(g, s, i, normed)]);
}

/**
 * Final RMSNorm and lm_head on the last position (every position with `all`): float32 logits
 * [1, vocab] ([1, S, vocab] with `all`). Without `lm_head.weight` the first `vocab` embedding rows
 * serve (tied weights). An int4 lm_head runs with float32 activations and scales in every variant
 * (fp16 logits would round near-ties of the greedy choice); float16 weights (the fp16 variant) take
 * float16 activations through the fp16 guard.
 */
export async function finalLogits(g: Graph, s: LayerSettings, x: string, all = false): Promise<string> {
  const t = s.w.config.text;
  const act: FloatType = s.p.linear === 'float16' ? 'float16' : 'float32';
  const weight = await s.w.get(names.finalNorm);
  const h = await g.scope('/model/norm', () => {
    const last = all ? x : g.op('Slice', [x, g.int64([-1]), g.int64([Number.MAX_SAFE_INTEGER]), g.int64([1])]);
    return rmsNorm(g, last, { name: 'model.transformer.ln_f', weight, eps: t.layerNormEps, act: 'float32', out: 'float32' });
  });
  return g.scope('/lm_head', async () => {
    const lmHead = s.w.has(names.lmHead) ? s.w.ref(names.lmHead) : s.w.ref(names.embedding, 0, t.vocabSize);
    let logits = await guardedLinear(g, h, { name: 'lm_head', weight: lmHead, N: t.vocabSize, K: t.hiddenSize, format: s.p.linear, act, q4: s.q4 });
    if (!all) logits = g.op('Reshape', [logits, g.int64([1, t.vocabSize])]);
    return logits;
  });
}
