// WebGPU decoder graph: the decoder of decoder.ts with a fixed-capacity KV cache updated in place.
//
//   cache       past_key_values.{i}.key/value [1, kv_heads, max_cache_length, head_dim] are GPU buffers
//               the runtime also binds as present.{i}.key/value; GroupQueryAttention runs in
//               share-buffer mode and writes the new keys/values at positions P..P+S−1 (no
//               allocation or copy of the cache per token). seqlens_k = P+S−1 and
//               total_sequence_length = P+S carry the valid length.
//   attention   one If per layer picks the output:
//               - prefill (S > 1): Molmo2's mask (k ≤ q OR both image tokens) through
//                 MultiHeadAttention over the un-expanded KV heads (query heads folded into the query
//                 axis, see groupedQueryAttention), reading keys 0..P+S−1 back from the cache;
//               - decode (S = 1): GroupQueryAttention's own (causal) output.
//               Weights are shared: the branches hold no weights, only attention.
//   outputs     logits [1, vocab] of the last position and next_token = argmax (int64 [1]), so a
//               decode step reads back 8 bytes.
//
// Extra inputs over io.ts: position_ids int64 [1, S] (= P..P+S−1), seqlens_k int32 [1],
// total_sequence_length int32 [] (see WEBGPU_DECODER_INPUTS in io.ts). token_type_ids covers the
// P+S positions, as in io.ts.
import { names } from '../tensors.ts';
import type { CheckedWeights } from './checked-weights.ts';
import { buildDecoder as buildPortableDecoder, type DecoderBuilder } from './decoder.ts';
import { addImageFeatures, attentionBias, attentionInputs, attentionOutputAndMlp, embedTokens, finalLogits, groupedQueryAttention, layerScope, ropeTables, type LayerSettings, type RopeTables } from './decoder-parts.ts';
import { float, Graph, ONNX_TYPE } from './graph.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS, WEBGPU_DECODER_INPUTS, WEBGPU_DECODER_OUTPUTS } from './io.ts';
import { cast, DEFAULT_Q4, quantizeRowsInto, type Precision, type Q4Slots } from './layers.ts';

/** Symbolic size of the cache buffers (chosen by the runtime when it allocates them). */
export const CACHE_LENGTH_DIM = 'max_cache_length';

/** onnxruntime's GroupQueryAttention (CPU and WebGPU) requires head sizes that are multiples of 8. */
export function supportsStaticCache(headDim: number): boolean {
  return headDim % 8 === 0;
}

export const buildDecoder: DecoderBuilder = async (g, w, o) => {
  const t = w.config.text;
  const { act } = o.precision;
  const s: LayerSettings = { w, p: o.precision, q4: o.q4 ?? DEFAULT_Q4 };
  if (t.numLayers < 1) throw new Error('the decoder needs at least one layer');
  if (o.mask === 'causal' || o.logits === 'all') throw new Error('the WebGPU decoder builds only the Molmo2 mask and last-position logits');
  // Released Molmo2 decoders have head_dim 128; tiny test widths may not fit GroupQueryAttention, and
  // the portable decoder (growing cache, no GQA) runs on the WebGPU EP as well.
  // Its table takes the activation type: an fp16 table would need shader-f16 in fp32-activation variants.
  if (!supportsStaticCache(t.headDim)) return buildPortableDecoder(g, w, { ...o, precision: { ...o.precision, table: o.precision.act } });

  const inputIds = g.input(DECODER_INPUTS.inputIds, 'int64', [1, 'sequence_length']);
  const imageFeatures = g.input(DECODER_INPUTS.imageFeatures, 'float32', ['num_image_features', t.hiddenSize]);
  const tokenTypeIds = g.input(DECODER_INPUTS.tokenTypeIds, 'int64', [1, 'total_sequence_length']);
  const positionIds = g.input(WEBGPU_DECODER_INPUTS.positionIds, 'int64', [1, 'sequence_length']);
  const seqlensK = g.input(WEBGPU_DECODER_INPUTS.seqlensK, 'int32', [1]);
  const totalLength = g.input(WEBGPU_DECODER_INPUTS.totalSequenceLength, 'int32', []);
  const cacheDims = [1, t.numKvHeads, CACHE_LENGTH_DIM, t.headDim];
  const cache = Array.from({ length: t.numLayers }, (_, i) => ({
    key: g.input(DECODER_INPUTS.pastKey(i), act, cacheDims),
    value: g.input(DECODER_INPUTS.pastValue(i), act, cacheDims),
  }));

  let x = await webgpuEmbeddings(g, w, inputIds, imageFeatures, o.precision);
  const { query, key, total, isPrefill } = g.scope('/model/positions', () => {
    const query = g.op('Reshape', [positionIds, g.int64([-1])]); // [S]
    const total = g.op('Cast', [g.op('Reshape', [totalLength, g.int64([1])])], { to: ONNX_TYPE.int64 }); // int64 [1]
    const key = g.op('Range', [g.scalarInt64(0), g.op('Squeeze', [total, g.int64([0])]), g.scalarInt64(1)]); // [T]
    const S = g.op('Shape', [inputIds], { start: 1, end: 2 });
    const isPrefill = g.op('Squeeze', [g.op('Greater', [S, g.int64([1])]), g.int64([0])]); // bool []
    return { query, key, total, isPrefill };
  });
  const bias = attentionBias(g, tokenTypeIds, { query, key }, 'molmo2'); // [1, 1, S, T]
  const rope = ropeTables(g, query, t.headDim, t.ropeTheta);
  const shared: Shared = { bias, rope, isPrefill, total, seqlensK, totalLength };

  for (let i = 0; i < t.numLayers; i++) x = await g.scope(layerScope(i), () => decoderLayer(g, s, i, x, cache[i], shared));

  // output() renames the producing node's value, so later nodes use the name it returns.
  const logits = g.output(await finalLogits(g, s, x), 'float32', [1, t.vocabSize], DECODER_OUTPUTS.logits);
  const next = g.scope('/lm_head', () => g.op('ArgMax', [logits], { axis: -1, keepdims: 0 }));
  g.output(next, 'int64', [1], WEBGPU_DECODER_OUTPUTS.nextToken);
};

/**
 * Token embeddings + image features, as decoder-parts.ts's embedTokens, with a table the device can
 * read: int4 (GatherBlockQuantized, fp32 or fp16 scales) for q4 variants, else the activation type.
 * An fp16 table would need shader-f16 even in the fp32-activation q4 variant, which exists for GPUs
 * without it; in fp32 the 152k-row Molmo2 table would take 1.5 GB.
 */
async function webgpuEmbeddings(g: Graph, w: CheckedWeights, inputIds: string, imageFeatures: string, p: Precision): Promise<string> {
  const t = w.config.text;
  const d = t.hiddenSize;
  const blockSize = 32;
  if (p.linear !== 'q4' || d % blockSize !== 0) return embedTokens(g, w, inputIds, imageFeatures, { ...p, table: p.act });
  const rows = t.vocabSize + t.additionalVocabSize;
  // One weight must fit one external-data chunk: split by rows when needed (not for Molmo2-4B: 195 MB).
  const rowBytes = d / 2 + (d / blockSize) * (p.act === 'float16' ? 2 : 4);
  const rowsPerPart = Math.max(1, Math.floor(g.maxWeightBytes() / rowBytes));
  if (rowsPerPart < rows) return embedTokens(g, w, inputIds, imageFeatures, { ...p, table: p.act });
  // Rows of concat(embedding, new_embedding), quantized block by block straight into the two tensors.
  const slots: Q4Slots = {
    data: await g.weightSlot('model.transformer.wte.q4.data', 'uint8', [rows, d / 2]),
    scales: await g.weightSlot('model.transformer.wte.q4.scales', p.act, [rows, d / blockSize]),
  };
  const sources = [w.ref(names.embedding), w.ref(names.newEmbedding)].map((ref) => ({ ref, from: 0, to: ref.rows }));
  await quantizeRowsInto(g, sources, d, { blockSize, symmetric: true, scaleType: p.act }, slots);
  await g.settle();
  return g.scope('/model/embed_tokens', () => {
    // uint8 4-bit data without zero points uses the implicit zero point 8, as MatMulNBits does.
    const x = g.ms('GatherBlockQuantized', [slots.data.name, inputIds, slots.scales.name], { gather_axis: 0, quantize_axis: 1, block_size: blockSize, bits: 4 });
    return addImageFeatures(g, w, cast(g, x, p.act, 'float32'), inputIds, imageFeatures);
  });
}

interface Shared {
  bias: string;
  rope: RopeTables;
  isPrefill: string;
  /** int64 [1] = P + S. */
  total: string;
  seqlensK: string;
  totalLength: string;
}

/**
 * A subgraph for an If branch, its nodes under `<scope>/<name>`. Subgraph values share one namespace
 * with the outer graph, so every outer name is reserved in the branch before it is built and every
 * branch name in the outer graph after.
 */
function branch(outer: Graph, name: string, build: (b: Graph) => string): Graph {
  const scope = `${outer.scopePath}/${name}`;
  const b = new Graph(outer.fresh(scope), { opset: outer.opset, scope });
  for (const v of outerNames(outer)) b.fresh(v);
  const out = build(b);
  b.output(out, 'float32', [1, 'sequence_length', 'attention_width']);
  for (const v of outerNames(b)) outer.fresh(v);
  return b;
}

function outerNames(g: Graph): string[] {
  return [
    ...g.inputs.map((i) => i.name ?? ''),
    ...g.initializers.map((i) => i.name ?? ''),
    ...g.nodes.flatMap((n) => [...(n.output ?? []), n.name ?? '']),
  ].filter(Boolean);
}

/** One pre-norm block; GroupQueryAttention writes the new keys/values into the cache in place. */
async function decoderLayer(g: Graph, s: LayerSettings, i: number, x: string, cache: { key: string; value: string }, shared: Shared): Promise<string> {
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = s.w.config.text;
  const { act } = s.p;
  const { q, k, v } = await attentionInputs(g, s, i, x, shared.rope);
  const attn = g.scope('attn', () => {
    const flat = (y: string, heads: number) => g.op('Reshape', [y, g.int64([0, 0, heads * D])]);
    const qr = flat(q, H); // [1, S, H·D] fp32
    const kr = flat(k, Hkv);
    const [causal, key, value] = g.node('GroupQueryAttention', [cast(g, qr, 'float32', act), cast(g, kr, 'float32', act), v, cache.key, cache.value, shared.seqlensK, shared.totalLength], {
      domain: 'com.microsoft',
      attrs: { num_heads: H, kv_num_heads: Hkv, scale: float(1 / Math.sqrt(D)) },
      outputs: 3,
    });
    // The cache outputs keep the input's name-free shape: the runtime binds them to the input buffers.
    const cacheDims = [1, Hkv, CACHE_LENGTH_DIM, D];
    const presentKey = g.output(key, act, cacheDims, DECODER_OUTPUTS.presentKey(i));
    const presentValue = g.output(value, act, cacheDims, DECODER_OUTPUTS.presentValue(i));

    const prefill = branch(g, 'prefill', (br) => {
      const upTo = (c: string) => cast(br, br.op('Slice', [c, br.int64([0]), shared.total, br.int64([2])]), act, 'float32'); // [1, Hkv, P+S, D]
      return groupedQueryAttention(br, qr, upTo(presentKey), upTo(presentValue), shared.bias, { numHeads: H, numKvHeads: Hkv, headDim: D });
    });
    // A branch output must be produced inside the branch, hence the Identity when no Cast is needed.
    const decode = branch(g, 'decode', (br) => (act === 'float32' ? br.op('Identity', [causal]) : cast(br, causal, act, 'float32')));
    return g.node('If', [shared.isPrefill], { attrs: { then_branch: { graph: prefill }, else_branch: { graph: decode } }, outputs: 1 })[0];
  });
  return attentionOutputAndMlp(g, s, i, x, attn);
}
