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
//                 axis, see groupedQueryAttention), reading keys 0..P+S−1 back from the cache, in
//                 chunks of `prefillChunk` query rows: each chunk builds only its own rows of the mask
//                 ([chunk, T], from the key positions and image flags made once per prefill), so no
//                 buffer grows with S·T. GroupQueryAttention has already written the layer's keys and
//                 values for the whole prompt, so image queries still see the image tokens after them;
//               - decode (S = 1): GroupQueryAttention's own (causal) output.
//               Weights are shared: the branches hold no weights, only attention.
//   fused ops   the kernels onnxruntime-genai's Qwen3 decoder uses, so a decode step costs few
//               dispatches: GroupQueryAttention rotates q and k itself (do_rotary, with cos/sin
//               tables for every position, computed as the reference does), and each residual add
//               and the norm after it are one SkipSimplifiedLayerNormalization.
//   outputs     logits [1, vocab] of the last position and next_token = argmax (int64 [1]), so a
//               decode step reads back 8 bytes.
//
// Extra inputs over io.ts: position_ids int64 [1, S] (= P..P+S−1), seqlens_k int32 [1],
// total_sequence_length int32 [] (see WEBGPU_DECODER_INPUTS in io.ts). token_type_ids covers the
// P+S positions, as in io.ts.
import { names } from '../tensors.ts';
import type { CheckedWeights } from './checked-weights.ts';
import { buildDecoder as buildPortableDecoder, type DecoderBuilder } from './decoder.ts';
import { addImageFeatures, applyRope, attentionInputsFromNormed, attentionOutput, attentionOutputAndMlp, embedTokens, finalLogits, groupedQueryAttention, inputNorm, layerScope, maskKeys, maskRows, mlp, skipNorm, type LayerSettings, type MaskKeys } from './decoder-parts.ts';
import type { TextConfig } from '../config.ts';
import { ropeFrequencies, ropeKindOf, ropeKindsUsed, ropeTable, type RopeKind } from '../rope.ts';
import { float, Graph, ONNX_TYPE } from './graph.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS, WEBGPU_DECODER_INPUTS, WEBGPU_DECODER_OUTPUTS } from './io.ts';
import { cast, DEFAULT_Q4, floatBytes, quantizeRowsInto, type FloatType, type Precision, type Q4Slots } from './layers.ts';

/** Symbolic size of the cache buffers (chosen by the runtime when it allocates them). */
export const CACHE_LENGTH_DIM = 'max_cache_length';

/**
 * Query rows per attention chunk of a prefill, unless the converter is told otherwise. A chunk's mask
 * is float32 [n_rep·chunk, T] (n_rep = query heads per KV head): 268 MB at 32k keys for Molmo2-4B.
 */
export const PREFILL_CHUNK_TOKENS = 512;

/** The query rows per prefill chunk a decoder is built with: the requested number, at most the model's positions. */
export function prefillChunkOf(maxPositions: number, requested = PREFILL_CHUNK_TOKENS): number {
  if (!Number.isInteger(requested) || requested < 1) throw new Error(`prefillChunk must be a positive integer, got ${requested}`);
  return Math.min(requested, maxPositions);
}

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
  const { query, isPrefill } = g.scope('/model/positions', () => {
    const query = g.op('Reshape', [positionIds, g.int64([-1])]); // [S]
    const S = g.op('Shape', [inputIds], { start: 1, end: 2 });
    const isPrefill = g.op('Squeeze', [g.op('Greater', [S, g.int64([1])]), g.int64([0])]); // bool []
    return { query, isPrefill };
  });
  // The key side of Molmo2's mask (positions, image flags, image-query bias) is made once, and only for a
  // prefill: a decode step attends through GroupQueryAttention's causal mask, so its branch returns
  // placeholders nobody reads.
  const keys = g.scope('/model/attn_mask', () => {
    const dims = [[1, 'mask_columns'], ['mask_columns'], [1, 'mask_columns']];
    const prefill = branch(g, 'prefill', (br) => {
      const key = br.op('Range', [br.scalarInt64(0), br.op('Squeeze', [totalOf(br, totalLength), br.int64([0])]), br.scalarInt64(1)]); // [T]
      const k = maskKeys(br, tokenTypeIds, key, 'molmo2');
      return [k.position, k.image!.flag, k.image!.bias];
    }, dims);
    const unused = (br: Graph, dims: number[]) => br.op('Identity', [br.constant('float32', dims, new Float32Array(1), 'unused_mask_keys')]);
    const decode = branch(g, 'decode', (br) => [unused(br, [1, 1]), unused(br, [1]), unused(br, [1, 1])], dims);
    const [position, flag, bias] = g.node('If', [isPrefill], { attrs: { then_branch: { graph: prefill }, else_branch: { graph: decode } }, outputs: 3 });
    return { position, image: { flag, bias } };
  });
  const rotary: Partial<Record<RopeKind, RotaryCaches>> = {};
  for (const kind of ropeKindsUsed(t)) rotary[kind] = await rotaryCaches(g, t, kind, act);
  const shared: Shared = { keys, chunk: prefillChunkOf(t.maxPositionEmbeddings, o.prefillChunk), maxPositions: t.maxPositionEmbeddings, rotary, cache, query, isPrefill, seqlensK, totalLength };

  // The residual stream between layers is (x, delta): each layer's first norm adds the previous
  // layer's MLP output in one SkipSimplifiedLayerNormalization.
  let stream: Stream = { x, delta: null };
  for (let i = 0; i < t.numLayers; i++) stream = await g.scope(layerScope(i), () => decoderLayer(g, s, i, stream, shared));
  const last = stream;
  x = last.delta === null ? last.x : g.scope('/model/norm', () => g.op('Add', [last.x, last.delta!]));

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
  keys: MaskKeys;
  /** Query rows per prefill attention chunk, and the most positions a prompt can have. */
  chunk: number;
  maxPositions: number;
  /** The rotary tables of each kind the layers use (ropeKindOf). */
  rotary: Partial<Record<RopeKind, RotaryCaches>>;
  /** Each layer's cache inputs (bound to the same buffers as its present outputs). */
  cache: { key: string; value: string }[];
  /** int64 [S]: the new tokens' positions. */
  query: string;
  isPrefill: string;
  seqlensK: string;
  totalLength: string;
}

/** The float32 residual stream entering a layer, and the previous layer's MLP output not yet added. */
interface Stream {
  x: string;
  delta: string | null;
}

/** GroupQueryAttention's rotary tables, [max_position_embeddings, head_dim/2] in the activation type. */
interface RotaryCaches {
  cos: string;
  sin: string;
  type: FloatType;
  headDim: number;
}

/**
 * cos/sin of position · inv_freq for every position the model takes, computed here the way the
 * reference does (float32 angle, then cos/sin; YaRN's table times its attention factor):
 * GroupQueryAttention rotates q and k with them (do_rotary; the rotation is linear in cos and sin, so
 * a scaled table scales q and k as the reference does), and the prefill branch gathers its query rows
 * from the same tables.
 */
async function rotaryCaches(g: Graph, text: TextConfig, kind: RopeKind, type: FloatType): Promise<RotaryCaches> {
  const maxPositions = text.maxPositionEmbeddings;
  const half = text.headDim / 2;
  const { cos, sin } = ropeTable(ropeFrequencies(text, kind), 0, maxPositions);
  const prefix = kind === 'default' ? 'model.rotary' : 'model.rotary_scaled';
  return g.scope(kind === 'default' ? '/model/rotary' : '/model/rotary_scaled', async () => ({
    cos: await g.weight(`${prefix}.cos_cache`, type, [maxPositions, half], floatBytes(cos, type)),
    sin: await g.weight(`${prefix}.sin_cache`, type, [maxPositions, half], floatBytes(sin, type)),
    type,
    headDim: text.headDim,
  }));
}

/**
 * P + S as int64 [1], made inside the prefill branch that needs it from the total_sequence_length input
 * (on the CPU): an If copies the outer values its branches use before it runs either one, so a length
 * cast on the GPU outside would be read back at every decode step.
 */
function totalOf(br: Graph, totalLength: string): string {
  return br.op('Cast', [br.op('Reshape', [totalLength, br.int64([1])])], { to: ONNX_TYPE.int64 });
}

/**
 * A subgraph for an If branch, its nodes under `<scope>/<name>`. Subgraph values share one namespace
 * with the outer graph, so every outer name is reserved in the branch before it is built and every
 * branch name in the outer graph after.
 */
function branch(outer: Graph, name: string, build: (b: Graph) => string | string[], dims: (number | string)[] | (number | string)[][] = [1, 'sequence_length', 'attention_width']): Graph {
  const scope = `${outer.scopePath}/${name}`;
  const b = new Graph(outer.fresh(scope), { opset: outer.opset, scope });
  b.reserve(outer.takenNames());
  const outs = [build(b)].flat();
  const shapes = Array.isArray(dims[0]) ? (dims as (number | string)[][]) : [dims as (number | string)[]];
  outs.forEach((out, k) => b.output(out, 'float32', shapes[k]));
  outer.reserve(b.takenNames());
  return b;
}

/** Chunk slots per If block of a prefill after the first chunk (see chunkedAttention). */
const SLOTS_PER_BLOCK = 8;

/**
 * Prefill attention of the new queries (float32 [1, S, H·D], rotated) over keys/values 0..T−1
 * ([1, Hkv, T, D]) in chunks of `shared.chunk` rows, each with its own rows of Molmo2's mask.
 * ONNX has no loop the WebGPU EP runs, so the graph has a slot for every chunk a prompt of
 * max_position_embeddings tokens can need. The first chunk always runs, alone, so a prompt of one
 * chunk attends once; the others come SLOTS_PER_BLOCK to an If block that runs only when the prompt
 * reaches it (an If per slot would make session creation slow: each branch is a subgraph with its own
 * state; no If would run every slot of every layer). A slot past the prompt inside a running block
 * attends for the prompt's last row: slot k takes rows [min(k·chunk, S−1), min((k+1)·chunk, S)), a
 * block that does not run gives one row of zeros, and the first S rows of everything joined in order
 * are the output.
 */
function chunkedAttention(g: Graph, q: string, keys: string, values: string, shared: Shared, heads: { numHeads: number; numKvHeads: number; headDim: number }): string {
  const C = shared.chunk;
  const rep = heads.numHeads / heads.numKvHeads;
  const width = heads.numHeads * heads.headDim;
  const slots = Math.ceil(shared.maxPositions / C);
  const attend = (b: Graph, qRows: string, queryRows: string) => groupedQueryAttention(b, qRows, keys, values, maskRows(b, shared.keys, queryRows, rep), heads, 'folded');
  if (slots === 1) return attend(g, q, shared.query);
  const S = g.op('Shape', [shared.query]); // int64 [1]: the row arithmetic stays on the CPU
  const last = g.op('Sub', [S, g.int64([1])]);
  const slot = (b: Graph, k: number) =>
    b.scope(`chunk_${k}`, () => {
      const from = k === 0 ? b.int64([0]) : b.op('Min', [b.int64([k * C]), last]);
      const to = b.op('Min', [b.int64([(k + 1) * C]), S]);
      const rows = (x: string, axis: number) => b.op('Slice', [x, from, to, b.int64([axis])]);
      return attend(b, rows(q, 1), rows(shared.query, 0));
    });
  const outs = [slot(g, 0)];
  for (let first = 1; first < slots; first += SLOTS_PER_BLOCK) {
    const index = Math.ceil(first / SLOTS_PER_BLOCK);
    const run = g.op('Squeeze', [g.op('Greater', [S, g.int64([first * C])]), g.int64([0])]);
    const dims = [1, 'block_rows', width];
    const then = branch(g, `block_${index}`, (b) => concatRows(b, Array.from({ length: Math.min(SLOTS_PER_BLOCK, slots - first) }, (_, i) => slot(b, first + i))), dims);
    const none = branch(g, `block_${index}_none`, (b) => b.op('Identity', [b.constant('float32', [1, 1, width], new Float32Array(width), 'unused_row')]), dims);
    outs.push(g.node('If', [run], { attrs: { then_branch: { graph: then }, else_branch: { graph: none } }, outputs: 1 })[0]);
  }
  return g.op('Slice', [concatRows(g, outs), g.int64([0]), S, g.int64([1])]);
}

/**
 * Concat along axis 1 in groups of at most 6 inputs: a WebGPU shader binds each input as a storage
 * buffer, and adapters may allow as few as 8 per stage.
 */
function concatRows(g: Graph, parts: string[]): string {
  if (parts.length === 1) return parts[0];
  const groups: string[] = [];
  for (let i = 0; i < parts.length; i += 6) {
    const group = parts.slice(i, i + 6);
    groups.push(group.length === 1 ? group[0] : g.op('Concat', group, { axis: 1 }));
  }
  return concatRows(g, groups);
}

/**
 * One block. GroupQueryAttention rotates q and k (do_rotary) and writes the new keys/values into the
 * cache in place; the prefill branch rotates its own copy of q with the same tables. A post-norm
 * block (OLMo-3) reads the stream itself and normalizes its outputs before each add, so it has no
 * residual-add + norm to fuse and hands on no pending delta.
 */
async function decoderLayer(g: Graph, s: LayerSettings, i: number, input: Stream, shared: Shared): Promise<Stream> {
  const text = s.w.config.text;
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = text;
  const { act } = s.p;
  const post = text.normAfter;
  const { normed, sum: x } = post ? { normed: input.x, sum: input.x } : input.delta === null ? { normed: await inputNorm(g, s, i, input.x), sum: input.x } : await skipNorm(g, s, i, 'input_layernorm', input.x, input.delta, 'attn_norm');
  const { q, k, v } = await attentionInputsFromNormed(g, s, i, normed, null);
  const attn = g.scope('attn', () => {
    const flat = (y: string, heads: number) => g.op('Reshape', [y, g.int64([0, 0, heads * D])]);
    const qFlat = flat(q, H); // [1, S, H·D] fp32, not rotated
    const kFlat = flat(k, Hkv);
    const rotary = shared.rotary[ropeKindOf(text, i)]!;
    const [causal, key, value] = g.node('GroupQueryAttention', [cast(g, qFlat, 'float32', act), cast(g, kFlat, 'float32', act), v, shared.cache[i].key, shared.cache[i].value, shared.seqlensK, shared.totalLength, rotary.cos, rotary.sin], {
      domain: 'com.microsoft',
      attrs: { num_heads: H, kv_num_heads: Hkv, scale: float(1 / Math.sqrt(D)), do_rotary: 1, rotary_interleaved: 0 },
      outputs: 3,
    });
    // The cache outputs keep the input's name-free shape: the runtime binds them to the input buffers.
    const cacheDims = [1, Hkv, CACHE_LENGTH_DIM, D];
    const presentKey = g.output(key, act, cacheDims, DECODER_OUTPUTS.presentKey(i));
    const presentValue = g.output(value, act, cacheDims, DECODER_OUTPUTS.presentValue(i));

    const prefill = branch(g, 'prefill', (br) => {
      // The new positions' rows of the rotary tables, [1, S, 1, D/2] in float32.
      const rows = (table: string) => cast(br, br.op('Reshape', [br.op('Gather', [table, shared.query], { axis: 0 }), br.int64([1, -1, 1, D / 2])]), rotary.type, 'float32');
      const qr = br.op('Reshape', [applyRope(br, q, { cos: rows(rotary.cos), sin: rows(rotary.sin), headDim: D }), br.int64([0, 0, H * D])]); // [1, S, H·D]
      const total = totalOf(br, shared.totalLength);
      const upTo = (c: string) => cast(br, br.op('Slice', [c, br.int64([0]), total, br.int64([2])]), act, 'float32'); // [1, Hkv, P+S, D]
      return chunkedAttention(br, qr, upTo(presentKey), upTo(presentValue), shared, { numHeads: H, numKvHeads: Hkv, headDim: D });
    });
    // A branch output must be produced inside the branch, hence the Identity when no Cast is needed.
    const decode = branch(g, 'decode', (br) => (act === 'float32' ? br.op('Identity', [causal]) : cast(br, causal, act, 'float32')));
    return g.node('If', [shared.isPrefill], { attrs: { then_branch: { graph: prefill }, else_branch: { graph: decode } }, outputs: 1 })[0];
  });
  if (post) return { x: await attentionOutputAndMlp(g, s, i, x, attn), delta: null };
  const { normed: normed2, sum: h } = await skipNorm(g, s, i, 'post_attention_layernorm', x, await attentionOutput(g, s, i, attn), 'ff_norm');
  return { x: h, delta: await mlp(g, s, i, normed2) };
}
