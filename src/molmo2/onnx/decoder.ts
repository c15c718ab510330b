// Portable decoder graph (Qwen3 or OLMo-3 as Molmo2 stores them) with the I/O of io.ts, built from standard ONNX
// ops plus com.microsoft MatMulNBits / MultiHeadAttention / SimplifiedLayerNormalization, so it runs
// on onnxruntime's CPU EP (Node and wasm) and on the WebGPU EP.
//
//   embeddings  concat(embedding, new_embedding)[input_ids] + image_features at the <im_patch> tokens
//   blocks      pre-norm (Qwen3) or post-norm (OLMo-3); fused q|k|v; q/k RMSNorm per head (Qwen3) or
//               over the projection (OLMo-3); rotate-half RoPE at positions P..P+S−1 (YaRN's table on
//               the layers rope_scaling_layers lists);
//               grouped-query attention (query head i reads KV head ⌊i / n_rep⌋) over past + new keys
//               under allowed[q,k] = k ≤ q OR (tt[q] = 1 AND tt[k] = 1); SwiGLU MLP (ff_proj = up | gate)
//   output      final RMSNorm and lm_head on the last position only; present K/V = past ++ new
//
// The rule above is Molmo2's prefill mask; with one new token (a decode step) every earlier key is
// allowed, which is the causal mask. The residual stream, norms, RoPE, softmax, attention and the
// LM head run in float32; the KV cache and the linear layers' inputs use the variant's activation type.
import type { CheckedWeights } from './checked-weights.ts';
import { attentionBias, attentionInputs, attentionOutputAndMlp, embedTokens, finalLogits, groupedQueryAttention, layerScope, ropeTables, type LayerSettings, type Positions, type RopeTables } from './decoder-parts.ts';
import type { Graph } from './graph.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS } from './io.ts';
import { cast, DEFAULT_Q4, type Precision, type Q4Settings } from './layers.ts';
import { ropeKindOf, ropeKindsUsed, type RopeKind } from '../rope.ts';

export interface DecoderOptions {
  precision: Precision;
  q4?: Q4Settings;
  /** 'molmo2' (default): the prefill mask above. 'causal' drops the image rule (tests only). */
  mask?: 'molmo2' | 'causal';
  /** 'last' (default, the io.ts contract): logits [1, vocab]. 'all': [1, S, vocab] (tests only). */
  logits?: 'last' | 'all';
  /**
   * Query rows per prefill attention chunk of the WebGPU decoder (decoder-webgpu.ts, default
   * PREFILL_CHUNK_TOKENS); ≥ max_position_embeddings: one mask for the whole prefill.
   */
  prefillChunk?: number;
}

/** Builds a decoder into `g` (this one, or decoder-webgpu.ts's static-cache decoder). */
export type DecoderBuilder = (g: Graph, w: CheckedWeights, o: DecoderOptions) => Promise<void>;

export const buildDecoder: DecoderBuilder = async (g, w, o) => {
  const t = w.config.text;
  const { act } = o.precision;
  const s: LayerSettings = { w, p: o.precision, q4: o.q4 ?? DEFAULT_Q4 };
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
  const rope = Object.fromEntries(ropeKindsUsed(t).map((kind) => [kind, ropeTables(g, pos.query, t, kind)])) as Record<RopeKind, RopeTables>;

  for (let i = 0; i < t.numLayers; i++) {
    const layer = await g.scope(layerScope(i), () => decoderLayer(g, s, i, x, past[i], bias, rope[ropeKindOf(t, i)]));
    x = layer.x;
    const presentDims = [1, t.numKvHeads, 'total_sequence_length', t.headDim];
    g.output(layer.presentKey, act, presentDims, DECODER_OUTPUTS.presentKey(i));
    g.output(layer.presentValue, act, presentDims, DECODER_OUTPUTS.presentValue(i));
  }

  const all = o.logits === 'all';
  const logits = await finalLogits(g, s, x, all);
  g.output(logits, 'float32', all ? [1, 'sequence_length', t.vocabSize] : [1, t.vocabSize], DECODER_OUTPUTS.logits);
};

/** Positions from the shapes of input_ids ([1, S]) and one past key ([1, kv, P, D]). */
export function sequencePositions(g: Graph, inputIds: string, pastKey: string): Positions {
  return g.scope('/model/positions', () => {
    const S = g.op('Shape', [inputIds], { start: 1, end: 2 });
    const P = g.op('Shape', [pastKey], { start: 2, end: 3 });
    const zero = g.int64([0]);
    const scalar = (v: string) => g.op('Squeeze', [v, zero]);
    const T = scalar(g.op('Add', [P, S]));
    const one = g.scalarInt64(1);
    return { query: g.op('Range', [scalar(P), T, one]), key: g.op('Range', [g.scalarInt64(0), T, one]) };
  });
}

/** One block with a growing cache: present = past ++ new; returns the residual stream and present K/V. */
async function decoderLayer(
  g: Graph,
  s: LayerSettings,
  i: number,
  x: string,
  past: { key: string; value: string },
  bias: string,
  rope: RopeTables,
): Promise<{ x: string; presentKey: string; presentValue: string }> {
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = s.w.config.text;
  const { act } = s.p;
  const { q, k, v } = await attentionInputs(g, s, i, x, rope);
  const { attn, presentKey, presentValue } = g.scope('attn', () => {
    const toBnsh = (y: string) => g.op('Transpose', [y], { perm: [0, 2, 1, 3] }); // [1, S, h, D] → [1, h, S, D]
    const presentKey = g.op('Concat', [past.key, cast(g, toBnsh(k), 'float32', act)], { axis: 2 });
    const presentValue = g.op('Concat', [past.value, toBnsh(g.op('Reshape', [v, g.int64([0, 0, Hkv, D])]))], { axis: 2 });
    const flatQ = g.op('Reshape', [q, g.int64([0, 0, H * D])]);
    const keys = cast(g, presentKey, act, 'float32');
    const values = cast(g, presentValue, act, 'float32');
    const attn = groupedQueryAttention(g, flatQ, keys, values, bias, { numHeads: H, numKvHeads: Hkv, headDim: D });
    return { attn, presentKey, presentValue };
  });
  return { x: await attentionOutputAndMlp(g, s, i, x, attn), presentKey, presentValue };
}
