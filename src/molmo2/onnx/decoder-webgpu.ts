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
import { applyRope, attentionBias, blockOps, buildDecoder as buildPortableDecoder, embedTokens, groupedQueryAttention, ropeTables, type DecoderBuilder, type RopeTables } from './decoder.ts';
import { float, Graph } from './graph.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS, WEBGPU_DECODER_INPUTS, WEBGPU_DECODER_OUTPUTS } from './io.ts';
import { cast, DEFAULT_Q4, linear, quantizeRowsInto, rmsNorm, silu, type Precision, type Q4Settings, type Q4Slots } from './layers.ts';

/** Symbolic size of the cache buffers (chosen by the runtime when it allocates them). */
export const CACHE_LENGTH_DIM = 'max_cache_length';

/** onnxruntime's GroupQueryAttention (CPU and WebGPU) requires head sizes that are multiples of 8. */
export function supportsStaticCache(headDim: number): boolean {
  return headDim % 8 === 0;
}

export const buildDecoder: DecoderBuilder = async (g, w, o) => {
  const t = w.config.text;
  const { act } = o.precision;
  const q4 = o.q4 ?? DEFAULT_Q4;
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
  const query = g.op('Reshape', [positionIds, g.int64([-1])]); // [S]
  const total = g.op('Cast', [g.op('Reshape', [totalLength, g.int64([1])])], { to: 7 }); // int64 [1]
  const key = g.op('Range', [g.scalarInt64(0), g.op('Squeeze', [total, g.int64([0])]), g.scalarInt64(1)]); // [T]
  const bias = attentionBias(g, tokenTypeIds, { query, key }, 'molmo2'); // [1, 1, S, T]
  const rope = ropeTables(g, query, t.headDim, t.ropeTheta);
  const S = g.op('Shape', [inputIds], { start: 1, end: 2 });
  const isPrefill = g.op('Squeeze', [g.op('Greater', [S, g.int64([1])]), g.int64([0])]); // bool []
  const shared: Shared = { bias, rope, isPrefill, total, seqlensK, totalLength };

  for (let i = 0; i < t.numLayers; i++) x = await decoderLayer(g, w, i, x, cache[i], shared, o.precision, q4);

  const last = g.op('Slice', [x, g.int64([-1]), g.int64([Number.MAX_SAFE_INTEGER]), g.int64([1])]);
  const h = await rmsNorm(g, last, { name: 'model.transformer.ln_f', weight: await w.get(names.finalNorm), eps: t.layerNormEps, act });
  const lmHead = w.has(names.lmHead) ? w.ref(names.lmHead) : w.ref(names.embedding, 0, t.vocabSize);
  const logits = g.op('Reshape', [await linear(g, h, { name: 'lm_head', weight: lmHead, N: t.vocabSize, K: t.hiddenSize, format: o.precision.linear, act, q4 }), g.int64([1, t.vocabSize])]);
  // output() renames the producing node's value, so later nodes use the name it returns.
  const logits32 = g.output(cast(g, logits, act, 'float32'), 'float32', [1, t.vocabSize], DECODER_OUTPUTS.logits);
  g.output(g.op('ArgMax', [logits32], { axis: -1, keepdims: 0 }), 'int64', [1], WEBGPU_DECODER_OUTPUTS.nextToken);
};

/**
 * Token embeddings + image features, as decoder.ts's embedTokens, with a table the device can read:
 * int4 (GatherBlockQuantized, fp32 or fp16 scales) for q4 variants, else the activation type. An
 * fp16 table would need shader-f16 even in the fp32-activation q4 variant, which exists for GPUs
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
  const data = slots.data.name;
  const scales = slots.scales.name;
  // uint8 4-bit data without zero points uses the implicit zero point 8, as MatMulNBits does.
  const x = g.ms('GatherBlockQuantized', [data, inputIds, scales], { gather_axis: 0, quantize_axis: 1, block_size: blockSize, bits: 4 }, 'model.transformer.wte');

  // Image features added at the <im_patch> tokens, exactly as decoder.ts's embedTokens does.
  const features = g.op('Concat', [cast(g, imageFeatures, 'float32', p.act), g.constant(p.act, [1, d], p.act === 'float16' ? new Uint16Array(d) : new Float32Array(d), 'zero_row')], { axis: 0 });
  const isPatch = g.op('Equal', [inputIds, g.constant('int64', [], [w.config.tokens.imagePatch], 'image_patch_id')]);
  const ordinal = g.op('CumSum', [g.op('Cast', [isPatch], { to: 7 }), g.scalarInt64(1)]);
  const count = g.op('Shape', [imageFeatures], { start: 0, end: 1 });
  const row = g.op('Min', [g.op('Where', [isPatch, g.op('Sub', [ordinal, g.scalarInt64(1)]), count]), count]);
  return g.op('Add', [x, g.op('Gather', [features, row], { axis: 0 })]);
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
 * A subgraph for an If branch. Subgraph values share one namespace with the outer graph, so every
 * outer name is reserved in the branch before it is built and every branch name in the outer graph
 * after.
 */
function branch(outer: Graph, name: string, build: (b: Graph) => string): Graph {
  const b = new Graph(outer.fresh(name), { opset: outer.opset });
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

async function decoderLayer(
  g: Graph,
  w: CheckedWeights,
  i: number,
  x: string,
  cache: { key: string; value: string },
  s: Shared,
  p: Precision,
  q4: Q4Settings,
): Promise<string> {
  const { hiddenSize: d, numHeads: H, numKvHeads: Hkv, headDim: D, intermediateSize: I } = w.config.text;
  const { act } = p;
  const b = names.block(i);
  const { lin, norm, qkv } = blockOps(g, w, i, p, q4);
  const [q, k, v] = await qkv(x);
  const perHead = (heads: number) => g.int64([0, 0, heads, D]);
  const flat = (y: string, heads: number) => g.op('Reshape', [y, g.int64([0, 0, heads * D])]);
  // Per-head q/k RMSNorm and rotate-half RoPE in float32 (as decoder.ts), then the cache's type.
  const qr = flat(applyRope(g, await norm(g.op('Reshape', [q, perHead(H)]), 'self_attn.q_norm', 'float32'), s.rope), H); // [1, S, H·D] fp32
  const kr = flat(applyRope(g, await norm(g.op('Reshape', [k, perHead(Hkv)]), 'self_attn.k_norm', 'float32'), s.rope), Hkv);

  const presentKey = DECODER_OUTPUTS.presentKey(i);
  const presentValue = DECODER_OUTPUTS.presentValue(i);
  const [causal] = g.node('GroupQueryAttention', [cast(g, qr, 'float32', act), cast(g, kr, 'float32', act), v, cache.key, cache.value, s.seqlensK, s.totalLength], {
    domain: 'com.microsoft',
    attrs: { num_heads: H, kv_num_heads: Hkv, scale: float(1 / Math.sqrt(D)) },
    outputs: [`${b}.self_attn.gqa_out`, presentKey, presentValue],
    name: `${b}.self_attn.gqa`,
  });
  // The cache outputs keep the input's name-free shape: the runtime binds them to the input buffers.
  const cacheDims = [1, Hkv, CACHE_LENGTH_DIM, D];
  g.output(presentKey, act, cacheDims);
  g.output(presentValue, act, cacheDims);

  const prefill = branch(g, `${b}.prefill`, (br) => {
    const upTo = (c: string) => cast(br, br.op('Slice', [c, br.int64([0]), s.total, br.int64([2])]), act, 'float32'); // [1, Hkv, P+S, D]
    return groupedQueryAttention(br, qr, upTo(presentKey), upTo(presentValue), s.bias, { numHeads: H, numKvHeads: Hkv, headDim: D }, `${b}.self_attn.mha`);
  });
  // A branch output must be produced inside the branch, hence the Identity when no Cast is needed.
  const decode = branch(g, `${b}.decode`, (br) => (act === 'float32' ? br.op('Identity', [causal]) : cast(br, causal, act, 'float32')));
  const [attn] = g.node('If', [s.isPrefill], { attrs: { then_branch: { graph: prefill }, else_branch: { graph: decode } }, outputs: 1, name: `${b}.self_attn.select` });

  x = g.op('Add', [x, await lin(cast(g, attn, 'float32', act), 'self_attn.attn_out', d, H * D)]);
  // ff_proj's first half is the "up" projection, the second half the gate: ff_out(silu(gate) · up).
  const f = await lin(await norm(x, 'ff_norm'), 'mlp.ff_proj', 2 * I, d);
  const [up, gate] = g.node('Split', [f, g.int64([I, I])], { attrs: { axis: -1 }, outputs: 2 });
  return g.op('Add', [x, await lin(g.op('Mul', [silu(g, gate), up]), 'mlp.ff_out', d, I)]);
}
