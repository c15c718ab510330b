// Molmo2-O-7B's decoder (OLMo-3: post-norm blocks, q/k norm over the whole projection, full multi-head
// attention, YaRN RoPE on the listed layers) converted and run in onnxruntime-node against the
// independent fp32 reference, on a tiny O-7B-layout checkpoint written as the HF conversion lays it
// out: OLMo's 100,278-row vocabulary with the generated cl100k tokenizer (tools/lib/olmo-tokenizer.ts),
// the Molmo2 chat template, real preprocessing, a video and a two-image prompt.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Molmo2Config } from '../src/molmo2/config.ts';
import { hasFloat16Activations, type Dtype } from '../src/molmo2/manifest.ts';
import { modelChatTemplate } from '../src/molmo2/chat-template.ts';
import { imagePixelValues, planImage, videoFramePixelValues } from '../src/molmo2/image.ts';
import { CheckedWeights } from '../src/molmo2/onnx/checked-weights.ts';
import { buildDecoder as buildWebgpuDecoder } from '../src/molmo2/onnx/decoder-webgpu.ts';
import { exportVariant } from '../src/molmo2/onnx/export.ts';
import { Graph } from '../src/molmo2/onnx/graph.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS, VISION_INPUTS, VISION_OUTPUTS, WEBGPU_DECODER_INPUTS, WEBGPU_DECODER_OUTPUTS } from '../src/molmo2/onnx/io.ts';
import { precisionOf } from '../src/molmo2/onnx/layers.ts';
import { buildPrompt, type BuiltPrompt } from '../src/molmo2/prompt.ts';
import { ReferenceModel, type TensorSource } from '../src/molmo2/reference/index.ts';
import { argmax } from '../src/molmo2/reference/ops.ts';
import { CROP_VALUES, maxRelativeError, testPicture } from '../src/molmo2/reference/testing.ts';
import { Molmo2Tokenizer } from '../src/molmo2/tokenizer.ts';
import { readCheckpointFolder, SafetensorsCheckpoint } from './lib/checkpoint.ts';
import { OLMO_SPECIAL } from './lib/olmo-tokenizer.ts';
import { makeTinyCheckpoint } from './lib/tiny-checkpoint.ts';

const STEPS = 24;
const dirs: string[] = [];
let reader: SafetensorsCheckpoint;
afterAll(async () => {
  await reader?.close();
  dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
});

const int64 = (values: ArrayLike<number>, dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(Array.from(values), (v) => BigInt(v)), dims);

const relErr = maxRelativeError;

interface Case {
  name: string;
  prompt: BuiltPrompt;
  pixels: Float32Array;
  /** The reference's image features, greedy tokens (no stop) and the logits that chose each. */
  features: Float32Array;
  tokens: number[];
  stepLogits: Float32Array[];
}

let config: Molmo2Config;
let reference: ReferenceModel;
let tokenizer: Molmo2Tokenizer;
const cases: Case[] = [];

function makeCases(dir: string): Omit<Case, 'features' | 'tokens' | 'stepLogits'>[] {
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const tokenizerConfig = JSON.parse(read('tokenizer_config.json'));
  tokenizer = new Molmo2Tokenizer(JSON.parse(read('tokenizer.json')), tokenizerConfig);
  const chatTemplate = modelChatTemplate(read('chat_template.jinja'), tokenizerConfig)!;
  const base = { tokenizer, chatTemplate, tokens: config.tokens };
  const video = buildPrompt({ ...base, visual: { kind: 'video', timestamps: [0, 0.5, 1] }, conversation: { question: 'Track the red car.', history: [{ question: 'How many cars?', answer: 'Two.' }] } });
  const videoPixels = new Float32Array(3 * CROP_VALUES);
  [1, 2, 3].forEach((s, f) => videoPixels.set(videoFramePixelValues(testPicture(50, 30, s), 50, 30), f * CROP_VALUES));
  const sizes = [
    [200, 100],
    [600, 130],
  ];
  const plans = sizes.map(([w, h]) => planImage(w, h));
  const images = buildPrompt({ ...base, visual: { kind: 'images', plans }, conversation: { question: 'Point to the boats.' } });
  const imagePixels = new Float32Array(images.numCrops * CROP_VALUES);
  let at = 0;
  sizes.forEach(([w, h], k) => {
    imagePixels.set(imagePixelValues(testPicture(w, h, 5 + k), w, h), at * CROP_VALUES);
    at += plans[k].numCrops;
  });
  return [
    { name: 'video', prompt: video, pixels: videoPixels },
    { name: 'two images', prompt: images, pixels: imagePixels },
  ];
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'onnx-olmo-'));
  dirs.push(dir);
  config = (await makeTinyCheckpoint({ outDir: dir, seed: 5, family: 'o-7b' })).config;
  reader = await SafetensorsCheckpoint.open(await readCheckpointFolder(dir));
  reference = await ReferenceModel.load(config, reader);
  for (const c of makeCases(dir)) {
    const features = reference.visionFeatures(c.pixels, c.prompt.numCrops, c.prompt.pooledIdx, c.prompt.poolSize);
    const g = reference.generateGreedy({ inputIds: c.prompt.inputIds, imageFeatures: features, tokenTypeIds: c.prompt.tokenTypeIds, maxNewTokens: STEPS, eosId: -1 });
    cases.push({ ...c, features, tokens: g.tokens, stepLogits: g.stepLogits });
  }
}, 180_000);

async function exportTo(dtype: Dtype, weights: TensorSource = reader): Promise<{ vision: string; decoder: string }> {
  const dir = mkdtempSync(join(tmpdir(), `onnx-olmo-${dtype}-`));
  dirs.push(dir);
  const files = await exportVariant({
    config,
    weights,
    dtype,
    target: 'cpu',
    log: () => {},
    write: async (p, bytes) => {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), bytes);
    },
  });
  return { vision: join(dir, files[0].model), decoder: join(dir, files[1].model) };
}

/** The portable decoder: prefill, then one step per token (forced along `forced`, else its own argmax). */
async function generate(session: ort.InferenceSession, c: Case, features: Float32Array, forced?: number[], dtype: Dtype = 'fp32'): Promise<{ tokens: number[]; stepLogits: Float32Array[] }> {
  const t = config.text;
  const types = Array.from(c.prompt.tokenTypeIds);
  const dims = [1, t.numKvHeads, 0, t.headDim];
  const empty = () => (hasFloat16Activations(dtype) ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims));
  let past: ort.Tensor[] = Array.from({ length: 2 * t.numLayers }, empty);
  let ids: number[] = Array.from(c.prompt.inputIds);
  let feats = features;
  const tokens: number[] = [];
  const stepLogits: Float32Array[] = [];
  for (let k = 0; k < STEPS; k++) {
    const feeds: Record<string, ort.Tensor> = {
      [DECODER_INPUTS.inputIds]: int64(ids, [1, ids.length]),
      [DECODER_INPUTS.imageFeatures]: new ort.Tensor('float32', feats, [feats.length / t.hiddenSize, t.hiddenSize]),
      [DECODER_INPUTS.tokenTypeIds]: int64(types, [1, types.length]),
    };
    for (let i = 0; i < t.numLayers; i++) {
      feeds[DECODER_INPUTS.pastKey(i)] = past[2 * i];
      feeds[DECODER_INPUTS.pastValue(i)] = past[2 * i + 1];
    }
    const out = await session.run(feeds);
    const logits = out[DECODER_OUTPUTS.logits].data as Float32Array;
    stepLogits.push(logits);
    tokens.push(argmax(logits));
    past = Array.from({ length: t.numLayers }, (_, i) => [out[DECODER_OUTPUTS.presentKey(i)], out[DECODER_OUTPUTS.presentValue(i)]]).flat();
    ids = [forced ? forced[k] : tokens[k]];
    feats = new Float32Array(0);
    types.push(0);
  }
  return { tokens, stepLogits };
}

async function visionFeatures(path: string, c: Case): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({
    [VISION_INPUTS.pixelValues]: new ort.Tensor('float32', c.pixels, [c.prompt.numCrops, 729, 588]),
    [VISION_INPUTS.pooledIdx]: int64(c.prompt.pooledIdx, [c.prompt.pooledIdx.length / c.prompt.poolSize, c.prompt.poolSize]),
  });
  return out[VISION_OUTPUTS.imageFeatures].data as Float32Array;
}

describe('a tiny Molmo2-O-7B-layout checkpoint', () => {
  it('has the OLMo-3 decoder and vocabulary: post-norm, whole-projection q/k norm, MHA, YaRN on some layers only', () => {
    const t = config.text;
    expect(t).toMatchObject({ normAfter: true, qkNormType: 'olmo', vocabSize: 100278, ropeTheta: 500000, ropeScalingLayers: [2] });
    expect(t.numKvHeads).toBe(t.numHeads);
    expect(config.tokens).toMatchObject({ imageStart: 100278, imagePatch: 100280, eos: OLMO_SPECIAL.imEnd, bos: OLMO_SPECIAL.imEnd });
    // The real cl100k pieces: ordinary text becomes few tokens, and the chat markers are single ids.
    expect(tokenizer.encode('<|im_start|>user\nPoint to the boats.<|im_end|>')).toEqual([OLMO_SPECIAL.imStart, ...tokenizer.encode('user\nPoint to the boats.'), OLMO_SPECIAL.imEnd]);
    expect(tokenizer.encode('Point to the boats.').length).toBe(5);
    expect(tokenizer.decode(tokenizer.encode('Point to the boats.'))).toBe('Point to the boats.');
    const video = cases[0].prompt;
    expect(video.inputIds[0]).toBe(OLMO_SPECIAL.imEnd);
    expect(Array.from(video.inputIds).filter((id) => id === config.tokens.imagePatch).length).toBe(3 * 81);
  });

  it('the reference follows the config: YaRN and the post-norm order change its logits', async () => {
    const c = cases[1];
    const logits = reference.prefill(c.prompt.inputIds, c.features, c.prompt.tokenTypeIds).logits;
    for (const text of [{ ...config.text, ropeScaling: null, ropeScalingLayers: null }, { ...config.text, normAfter: false }]) {
      const other = await ReferenceModel.load({ ...config, text }, reader);
      expect(relErr(other.prefill(c.prompt.inputIds, c.features, c.prompt.tokenTypeIds).logits, logits)).toBeGreaterThan(1e-3);
    }
  }, 60_000);
});

describe('O-7B graphs against the reference', () => {
  let fp32: { vision: string; decoder: ort.InferenceSession };
  beforeAll(async () => {
    const files = await exportTo('fp32');
    fp32 = { vision: files.vision, decoder: await ort.InferenceSession.create(files.decoder) };
  }, 120_000);

  for (const which of [0, 1]) {
    it(`fp32 ${which === 0 ? 'video' : 'two-image'} prompt: features and logits within 1e-4 along the reference's tokens, greedy tokens identical`, async () => {
      const c = cases[which];
      const features = await visionFeatures(fp32.vision, c);
      expect(relErr(features, c.features)).toBeLessThan(1e-4);
      const forced = await generate(fp32.decoder, c, features, c.tokens);
      expect(Math.max(...forced.stepLogits.map((l, k) => relErr(l, c.stepLogits[k])))).toBeLessThan(1e-4);
      const free = await generate(fp32.decoder, c, features);
      expect(free.tokens).toEqual(c.tokens);
      expect(new Set(c.tokens).size).toBeGreaterThan(3);
    }, 60_000);
  }

  // q4f16 and fp16 carry float16 activations through the post-norm blocks, whose attention and MLP read
  // the unnormalized stream (through the fp16 guard).
  for (const dtype of ['q4', 'q4f16', 'fp16'] as const) {
    it(`${dtype}: prints its agreement with the reference`, async () => {
      const files = await exportTo(dtype);
      const decoder = await ort.InferenceSession.create(files.decoder);
      for (const c of cases) {
        const features = await visionFeatures(files.vision, c);
        const forced = await generate(decoder, c, features, c.tokens, dtype);
        const agreement = forced.tokens.filter((t, k) => t === c.tokens[k]).length / STEPS;
        const worst = Math.max(...forced.stepLogits.map((l, k) => relErr(l, c.stepLogits[k])));
        console.log(`O-7B ${dtype}, ${c.name} prompt: features rel. error ${relErr(features, c.features).toExponential(2)}, worst step-logit rel. error ${worst.toExponential(2)}, greedy agreement along the reference ${(agreement * 100).toFixed(0)}%`);
        expect(forced.stepLogits.every((l) => l.every(Number.isFinite))).toBe(true);
        // int4 weights move the logits, but not beyond recognition; fp16 alone far less.
        expect(worst).toBeLessThan(dtype === 'fp16' ? 2e-2 : 0.5);
      }
    }, 120_000);
  }

  it('the WebGPU decoder (static cache, GroupQueryAttention with both rotary tables) matches the reference at the prefill and along decode steps', async () => {
    const t = config.text;
    const g = new Graph('decoder');
    await buildWebgpuDecoder(g, new CheckedWeights(config, reader), { precision: precisionOf('fp32') });
    expect(g.toModelBytes().length).toBeGreaterThan(0);
    const session = await ort.InferenceSession.create(g.toModelBytes(), { executionProviders: ['cpu'] });
    const capacity = 512;
    const cache = Array.from({ length: 2 * t.numLayers }, () => new ort.Tensor('float32', new Float32Array(t.numKvHeads * capacity * t.headDim), [1, t.numKvHeads, capacity, t.headDim]));
    const c = cases[0];
    const types = Array.from(c.prompt.tokenTypeIds);
    let length = 0;
    const step = async (ids: number[], features: Float32Array) => {
      const S = ids.length;
      const total = length + S;
      const feeds: Record<string, ort.Tensor> = {
        [DECODER_INPUTS.inputIds]: int64(ids, [1, S]),
        [DECODER_INPUTS.imageFeatures]: new ort.Tensor('float32', features, [features.length / t.hiddenSize, t.hiddenSize]),
        [DECODER_INPUTS.tokenTypeIds]: int64(types.slice(0, total), [1, total]),
        [WEBGPU_DECODER_INPUTS.positionIds]: int64(Array.from({ length: S }, (_, i) => length + i), [1, S]),
        [WEBGPU_DECODER_INPUTS.seqlensK]: new ort.Tensor('int32', Int32Array.of(total - 1), [1]),
        [WEBGPU_DECODER_INPUTS.totalSequenceLength]: new ort.Tensor('int32', Int32Array.of(total), []),
      };
      const fetches: Record<string, ort.Tensor | null> = { [DECODER_OUTPUTS.logits]: null, [WEBGPU_DECODER_OUTPUTS.nextToken]: null };
      for (let i = 0; i < t.numLayers; i++) {
        feeds[DECODER_INPUTS.pastKey(i)] = fetches[DECODER_OUTPUTS.presentKey(i)] = cache[2 * i];
        feeds[DECODER_INPUTS.pastValue(i)] = fetches[DECODER_OUTPUTS.presentValue(i)] = cache[2 * i + 1];
      }
      const out = await session.run(feeds, fetches);
      length = total;
      return out[DECODER_OUTPUTS.logits].data as Float32Array;
    };
    const ref = reference.prefill(c.prompt.inputIds, c.features, c.prompt.tokenTypeIds);
    expect(relErr(await step(Array.from(c.prompt.inputIds), c.features), ref.logits)).toBeLessThan(1e-4);
    let next = argmax(ref.logits);
    for (let s = 0; s < 6; s++) {
      types.push(0);
      const refLogits = reference.decodeStep(ref.cache, next);
      expect(relErr(await step([next], new Float32Array(0)), refLogits)).toBeLessThan(1e-4);
      next = argmax(refLogits);
    }
  }, 120_000);
});
