// The WebGPU decoder graph (static share-buffer KV cache, If prefill/decode) checked on onnxruntime-node's
// CPU EP against the fp32 reference: logits at the prefill and along several decode steps, with one
// cache array bound as both past and present, and the in-place cache contents.
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPrompt, type BuiltPrompt } from '../prompt.ts';
import { ReferenceModel } from '../reference/index.ts';
import { molmo2ChatTemplate } from '../reference/molmo2-4b-chat-template.ts';
import { randomTensors, tinyConfig, tinyConfigJson, tinyTokenizer, type MemoryTensors } from '../reference/testing.ts';
import { CheckedWeights } from './checked-weights.ts';
import { buildDecoder } from './decoder-webgpu.ts';
import { Graph } from './graph.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS, WEBGPU_DECODER_INPUTS, WEBGPU_DECODER_OUTPUTS } from './io.ts';
import { precisionOf } from './layers.ts';
import { dequantizeQ4, quantizeQ4 } from './quant.ts';
import { names } from '../tensors.ts';

// GroupQueryAttention needs head_dim % 8 = 0: 4 heads × 16 = 64 query width, still ≠ d_model 36.
const configJson = tinyConfigJson();
(configJson.text_config as Record<string, unknown>).head_dim = 16;
const config = tinyConfig(configJson);
const t = config.text;
const MAX = 400;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const int64 = (v: ArrayLike<number>, dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(Array.from(v, BigInt)), dims);

/** A static-cache decoder session plus its cache arrays; `step` runs new tokens after `length`. */
class StaticDecoder {
  readonly cache: Float32Array[];
  private readonly tensors: ort.Tensor[];
  length = 0;
  tokenTypes: number[] = [];

  constructor(
    private readonly session: ort.InferenceSession,
    capacity = MAX,
  ) {
    this.cache = Array.from({ length: 2 * t.numLayers }, () => new Float32Array(t.numKvHeads * capacity * t.headDim));
    this.tensors = this.cache.map((c) => new ort.Tensor('float32', c, [1, t.numKvHeads, capacity, t.headDim]));
  }

  async step(ids: number[], types: number[], features: Float32Array): Promise<{ logits: Float32Array; next: number }> {
    const S = ids.length;
    const total = this.length + S;
    this.tokenTypes.push(...types);
    const feeds: Record<string, ort.Tensor> = {
      [DECODER_INPUTS.inputIds]: int64(ids, [1, S]),
      [DECODER_INPUTS.imageFeatures]: new ort.Tensor('float32', features, [features.length / t.hiddenSize, t.hiddenSize]),
      [DECODER_INPUTS.tokenTypeIds]: int64(this.tokenTypes, [1, total]),
      [WEBGPU_DECODER_INPUTS.positionIds]: int64(Array.from({ length: S }, (_, i) => this.length + i), [1, S]),
      [WEBGPU_DECODER_INPUTS.seqlensK]: new ort.Tensor('int32', Int32Array.of(total - 1), [1]),
      [WEBGPU_DECODER_INPUTS.totalSequenceLength]: new ort.Tensor('int32', Int32Array.of(total), []),
    };
    const fetches: Record<string, ort.Tensor | null> = { [DECODER_OUTPUTS.logits]: null, [WEBGPU_DECODER_OUTPUTS.nextToken]: null };
    for (let i = 0; i < t.numLayers; i++) {
      feeds[DECODER_INPUTS.pastKey(i)] = this.tensors[2 * i];
      feeds[DECODER_INPUTS.pastValue(i)] = this.tensors[2 * i + 1];
      fetches[DECODER_OUTPUTS.presentKey(i)] = this.tensors[2 * i];
      fetches[DECODER_OUTPUTS.presentValue(i)] = this.tensors[2 * i + 1];
    }
    const out = await this.session.run(feeds, fetches);
    this.length = total;
    return { logits: out[DECODER_OUTPUTS.logits].data as Float32Array, next: Number((out[WEBGPU_DECODER_OUTPUTS.nextToken].data as BigInt64Array)[0]) };
  }
}

async function buildSession(tensors: MemoryTensors, dtype: 'fp32' | 'q4', prefillChunk?: number): Promise<ort.InferenceSession> {
  const g = new Graph('decoder');
  await buildDecoder(g, new CheckedWeights(config, tensors), { precision: precisionOf(dtype), prefillChunk });
  return ort.InferenceSession.create(g.toModelBytes(), { executionProviders: ['cpu'] });
}

let tensors: MemoryTensors;
let reference: ReferenceModel;
let prompt: BuiltPrompt;
let features: Float32Array;

beforeAll(async () => {
  tensors = randomTensors(config, 11);
  reference = await ReferenceModel.load(config, tensors);
  prompt = buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'video', timestamps: [0, 0.5] }, conversation: { question: 'Point to the dog.' } });
  // Image features: random rows (the decoder only adds them at the <im_patch> tokens).
  features = Float32Array.from({ length: prompt.imagePatchPositions.length * t.hiddenSize }, (_, i) => Math.sin(i * 0.37) * 0.8);
});

describe('WebGPU decoder graph (static KV cache)', () => {
  it('matches the reference at the prefill and along greedy decode steps, updating the cache in place', async () => {
    const session = await buildSession(tensors, 'fp32');
    const dec = new StaticDecoder(session);
    const ids = Array.from(prompt.inputIds);
    const first = await dec.step(ids, Array.from(prompt.tokenTypeIds), features);
    const ref = reference.prefill(ids, features, prompt.tokenTypeIds);
    expect(maxAbsDiff(first.logits, ref.logits)).toBeLessThan(2e-4);
    // The reference with a causal-only mask gives other logits: the image rule is really applied.
    const causalRef = reference.decoderLogits(ids, features, new Uint8Array(ids.length));
    expect(maxAbsDiff(first.logits, causalRef.subarray((ids.length - 1) * t.vocabSize))).toBeGreaterThan(1e-2);

    let next = first.next;
    expect(next).toBe(ref.logits.indexOf(Math.max(...ref.logits)));
    for (let s = 0; s < 6; s++) {
      const refLogits = reference.decodeStep(ref.cache, next);
      const step = await dec.step([next], [0], new Float32Array(0));
      expect(maxAbsDiff(step.logits, refLogits)).toBeLessThan(2e-4);
      expect(step.next).toBe(refLogits.indexOf(Math.max(...refLogits)));
      next = step.next;
    }
    // Keys of layer 0 for the prompt sit at positions 0..P−1 of the bound array: the reference's cache.
    const keys = dec.cache[0];
    const refKeys = ref.cache.keys[0]; // [T, Hkv·D] rows
    const D = t.headDim;
    let worst = 0;
    for (let p = 0; p < ids.length; p++) {
      for (let h = 0; h < t.numKvHeads; h++) {
        for (let e = 0; e < D; e++) worst = Math.max(worst, Math.abs(keys[(h * MAX + p) * D + e] - refKeys[p * t.numKvHeads * D + h * D + e]));
      }
    }
    expect(worst).toBeLessThan(1e-4);
  });

  it('prefills a follow-up after a cached prefix (P > 0, S > 1) exactly as one cold prefill', async () => {
    // Prefix reuse: keep the cache of BOS + the visual blocks, drop the old question and answer (stale
    // entries past the valid length), prefill only the new question's tokens at positions P..P+S−1.
    const session = await buildSession(tensors, 'fp32');
    const dec = new StaticDecoder(session);
    const ids = Array.from(prompt.inputIds);
    const types = Array.from(prompt.tokenTypeIds);
    const prefix = types.lastIndexOf(1) + 1;
    const cold = await dec.step(ids, types, features);
    for (let s = 0, next = cold.next; s < 3; s++) next = (await dec.step([next], [0], new Float32Array(0))).next;

    const other = buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'video', timestamps: [0, 0.5] }, conversation: { question: 'How many cats are there?' } });
    const otherIds = Array.from(other.inputIds);
    expect(otherIds.slice(0, prefix)).toEqual(ids.slice(0, prefix));
    dec.length = prefix;
    dec.tokenTypes.length = prefix;
    const warm = await dec.step(otherIds.slice(prefix), Array.from(other.tokenTypeIds).slice(prefix), new Float32Array(0));
    const ref = reference.prefill(otherIds, features, other.tokenTypeIds);
    expect(maxAbsDiff(warm.logits, ref.logits)).toBeLessThan(2e-4);
    const fresh = new StaticDecoder(session);
    const coldOther = await fresh.step(otherIds, Array.from(other.tokenTypeIds), features);
    expect(warm.next).toBe(coldOther.next);
    expect(maxAbsDiff(warm.logits, coldOther.logits)).toBeLessThan(1e-5);
  });

  it('builds a q4 variant (fp32 table: d_model 36 is not a multiple of 32) close to the reference', async () => {
    const session = await buildSession(tensors, 'q4');
    const dec = new StaticDecoder(session);
    const ids = Array.from(prompt.inputIds);
    const first = await dec.step(ids, Array.from(prompt.tokenTypeIds), features);
    const ref = reference.prefill(ids, features, prompt.tokenTypeIds);
    // 4-bit weights: close, not equal.
    expect(maxAbsDiff(first.logits, ref.logits)).toBeLessThan(0.5);
    expect(first.next).toBe(first.logits.indexOf(Math.max(...first.logits)));
  });
});

describe('WebGPU decoder prefill in query chunks', () => {
  // A video prompt of about 4k tokens (the tiny model has 4096 positions) prefilled in chunks of 512 rows:
  // 40 frames, then a long question, so that chunk boundaries fall inside image blocks and inside text.
  const frames = 40;
  const long = () => buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'video', timestamps: Array.from({ length: frames }, (_, i) => i * 0.5) }, conversation: { question: `Track the dog${' and the cat'.repeat(40)}.` } });
  const rowsOf = (p: BuiltPrompt) => Float32Array.from({ length: p.imagePatchPositions.length * t.hiddenSize }, (_, i) => Math.sin(i * 0.013) * 0.8);

  it('gives the reference logits on a ~4k-token video prompt, with chunk boundaries inside image blocks and text, and equals one chunk', async () => {
    const p = long();
    const ids = Array.from(p.inputIds);
    const types = Array.from(p.tokenTypeIds);
    expect(ids.length).toBeGreaterThan(3500);
    expect(ids.length).toBeLessThan(t.maxPositionEmbeddings);
    const boundaries = Array.from({ length: Math.floor((ids.length - 1) / 512) }, (_, k) => (k + 1) * 512);
    expect(boundaries.some((b) => types[b - 1] === 1 && types[b] === 1)).toBe(true);
    expect(boundaries.some((b) => types[b - 1] === 0 && types[b] === 0)).toBe(true);
    const rows = rowsOf(p);

    const chunked = await buildSession(tensors, 'fp32', 512);
    const got = await new StaticDecoder(chunked, t.maxPositionEmbeddings).step(ids, types, rows);
    const ref = reference.prefill(ids, rows, p.tokenTypeIds);
    expect(maxAbsDiff(got.logits, ref.logits)).toBeLessThan(2e-4);
    expect(got.next).toBe(ref.logits.indexOf(Math.max(...ref.logits)));

    const whole = await buildSession(tensors, 'fp32', t.maxPositionEmbeddings);
    const one = await new StaticDecoder(whole, t.maxPositionEmbeddings).step(ids, types, rows);
    expect(maxAbsDiff(got.logits, one.logits)).toBeLessThan(1e-5);
  });

  it('prefills a long follow-up after a cached prefix in several chunks, two If blocks running, exactly as a cold prefill', async () => {
    const session = await buildSession(tensors, 'fp32', 128);
    const p = buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'video', timestamps: [0, 0.5, 1] }, conversation: { question: 'Point to the dog.' } });
    const q = buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'video', timestamps: [0, 0.5, 1] }, conversation: { question: `Count the dogs ${'and the cats '.repeat(100)}.` } });
    const rows = rowsOf(p);
    const prefix = Array.from(p.tokenTypeIds).lastIndexOf(1) + 1;
    // Past the first chunk and the first block of eight: the second If block runs, the later ones do not.
    expect(q.inputIds.length - prefix).toBeGreaterThan((1 + 8) * 128);
    expect(q.inputIds.length).toBeLessThan(2048);
    const dec = new StaticDecoder(session, 2048);
    await dec.step(Array.from(p.inputIds), Array.from(p.tokenTypeIds), rows);
    dec.length = prefix;
    dec.tokenTypes.length = prefix;
    const warm = await dec.step(Array.from(q.inputIds).slice(prefix), Array.from(q.tokenTypeIds).slice(prefix), new Float32Array(0));
    const ref = reference.prefill(Array.from(q.inputIds), rows, q.tokenTypeIds);
    expect(maxAbsDiff(warm.logits, ref.logits)).toBeLessThan(2e-4);
  });
});

describe('WebGPU decoder graph with an int4 embedding table', () => {
  it('gathers 4-bit embeddings (d_model a multiple of 32) and stays close to the reference', async () => {
    const json = tinyConfigJson();
    Object.assign(json.text_config as Record<string, unknown>, { head_dim: 16, hidden_size: 96 });
    (json.adapter_config as Record<string, unknown>).text_hidden_size = 96;
    const wide = tinyConfig(json);
    const w = randomTensors(wide, 3);
    const g = new Graph('decoder');
    await buildDecoder(g, new CheckedWeights(wide, w), { precision: precisionOf('q4') });
    expect(g.nodes.some((n) => n.opType === 'GatherBlockQuantized')).toBe(true);
    const session = await ort.InferenceSession.create(g.toModelBytes(), { executionProviders: ['cpu'] });
    // The reference with every int4-stored weight replaced by its dequantized values (4-bit rows of
    // 32, as the builder stores them): what the graph computes, up to MatMulNBits' int8 activations.
    let rounded = w;
    const roundTrip = (name: string) => {
      const [N, K] = rounded.shape(name);
      rounded = rounded.with(name, (data) => data.set(dequantizeQ4(quantizeQ4(data, N, K, { blockSize: 32 }))));
    };
    for (const n of [names.embedding, names.newEmbedding, names.lmHead]) roundTrip(n);
    for (let i = 0; i < wide.text.numLayers; i++) {
      for (const t of ['self_attn.att_proj', 'self_attn.attn_out', 'mlp.ff_proj', 'mlp.ff_out']) roundTrip(`${names.block(i)}.${t}.weight`);
    }
    const ref = await ReferenceModel.load(wide, rounded);
    const exact = await ReferenceModel.load(wide, w);
    const ids = [wide.tokens.bos, 5, 17, 99, 203, 317, 11];
    const feeds: Record<string, ort.Tensor> = {
      [DECODER_INPUTS.inputIds]: int64(ids, [1, ids.length]),
      [DECODER_INPUTS.imageFeatures]: new ort.Tensor('float32', new Float32Array(0), [0, 96]),
      [DECODER_INPUTS.tokenTypeIds]: int64(new Array(ids.length).fill(0), [1, ids.length]),
      [WEBGPU_DECODER_INPUTS.positionIds]: int64(ids.map((_, i) => i), [1, ids.length]),
      [WEBGPU_DECODER_INPUTS.seqlensK]: new ort.Tensor('int32', Int32Array.of(ids.length - 1), [1]),
      [WEBGPU_DECODER_INPUTS.totalSequenceLength]: new ort.Tensor('int32', Int32Array.of(ids.length), []),
    };
    const fetches: Record<string, ort.Tensor | null> = { [DECODER_OUTPUTS.logits]: null };
    for (let i = 0; i < wide.text.numLayers; i++) {
      const k = new ort.Tensor('float32', new Float32Array(wide.text.numKvHeads * 16 * 16), [1, wide.text.numKvHeads, 16, 16]);
      const v = new ort.Tensor('float32', new Float32Array(wide.text.numKvHeads * 16 * 16), [1, wide.text.numKvHeads, 16, 16]);
      Object.assign(feeds, { [DECODER_INPUTS.pastKey(i)]: k, [DECODER_INPUTS.pastValue(i)]: v });
      Object.assign(fetches, { [DECODER_OUTPUTS.presentKey(i)]: k, [DECODER_OUTPUTS.presentValue(i)]: v });
    }
    const out = await session.run(feeds, fetches);
    const got = out[DECODER_OUTPUTS.logits].data as Float32Array;
    const diff = maxAbsDiff(got, ref.prefill(ids, new Float32Array(0), new Uint8Array(ids.length)).logits);
    const vsExact = maxAbsDiff(got, exact.prefill(ids, new Float32Array(0), new Uint8Array(ids.length)).logits);
    expect(diff).toBeLessThan(0.05);
    // The comparison discriminates: the unquantized model's logits are much further away.
    expect(vsExact).toBeGreaterThan(4 * diff);
  });
});
