import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BuiltPrompt } from '../prompt.ts';
import { names } from '../tensors.ts';
import { applyRope, ropeTables } from './decoder.ts';
import { groupedAttention, ReferenceModel } from './index.ts';
import { CROP_VALUES, randomTensors, tinyConfig, tinyConfigJson, twoImageTestCase, videoTestCase, type MemoryTensors } from './testing.ts';

/** Logits of the official HF remote code on the same tiny checkpoint and prompts (see its note). */
const golden = JSON.parse(readFileSync(join(import.meta.dirname, 'hf-golden.test-data.json'), 'utf8'));

const config = tinyConfig();
const V = config.text.vocabSize;
const d = config.text.hiddenSize;
const FRAME = CROP_VALUES;


function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const row = (x: Float32Array, r: number, width: number) => x.subarray(r * width, (r + 1) * width);

let tensors: MemoryTensors;
let model: ReferenceModel;
// A 3-frame video with a follow-up turn, as in the golden data.
let video: { prompt: BuiltPrompt; pixels: Float32Array; features: Float32Array; logits: Float32Array };
const videoPixels = (seeds: number[]) => videoTestCase(config, seeds).pixels;

beforeAll(async () => {
  tensors = randomTensors(config, 7);
  model = await ReferenceModel.load(config, tensors);
  const { prompt, pixels } = videoTestCase(config, [1, 2, 3]);
  const features = model.visionFeatures(pixels, 3, prompt.pooledIdx, prompt.poolSize);
  video = { prompt, pixels, features, logits: model.decoderLogits(prompt.inputIds, features, prompt.tokenTypeIds) };
});

describe('agreement with the official HF implementation', () => {
  it('reproduces image features and logits of a video prompt, and its greedy tokens', () => {
    const g = golden.video;
    expect(video.prompt.inputIds.length).toBe(g.length);
    g.positions.forEach((p: number, k: number) => expect(maxAbsDiff(row(video.logits, p, V), g.logits[k]), `position ${p}`).toBeLessThan(1e-4));
    [0, 100, 242].forEach((r, k) => expect(maxAbsDiff(row(video.features, r, d), g.features[k]), `feature ${r}`).toBeLessThan(1e-4));
    const { prompt, features } = video;
    expect(model.generateGreedy({ inputIds: prompt.inputIds, imageFeatures: features, tokenTypeIds: prompt.tokenTypeIds, maxNewTokens: 6 }).tokens).toEqual(g.greedy);
  });

  it('reproduces image features and logits of a two-image prompt (padded pooling windows)', () => {
    const { prompt, pixels } = twoImageTestCase(config);
    const features = model.visionFeatures(pixels, prompt.numCrops, prompt.pooledIdx, prompt.poolSize);
    const logits = model.decoderLogits(prompt.inputIds, features, prompt.tokenTypeIds);
    const g = golden.images;
    expect(prompt.inputIds.length).toBe(g.length);
    g.positions.forEach((p: number, k: number) => expect(maxAbsDiff(row(logits, p, V), g.logits[k]), `position ${p}`).toBeLessThan(1e-4));
    const T = features.length / d;
    [0, 195, T - 1].forEach((r, k) => expect(maxAbsDiff(row(features, r, d), g.features[k]), `feature ${r}`).toBeLessThan(1e-4));
  });
});

describe('prefill mask', () => {
  it('lets earlier image tokens see a later frame, while tokens before all images stay causal', async () => {
    const changed = videoPixels([1, 2, 9]); // only the last frame differs
    const features = model.visionFeatures(changed, 3, video.prompt.pooledIdx, video.prompt.poolSize);
    const logits = model.decoderLogits(video.prompt.inputIds, features, video.prompt.tokenTypeIds);
    const ids = video.prompt.inputIds;
    const firstPatch = video.prompt.imagePatchPositions[0];
    const firstFrameStart = ids.indexOf(config.tokens.imageStart);
    // An <im_patch> of frame 0 changes …
    expect(maxAbsDiff(row(logits, firstPatch, V), row(video.logits, firstPatch, V))).toBeGreaterThan(1e-3);
    // … and so does frame 0's start token, the first image-special token of the sequence.
    expect(maxAbsDiff(row(logits, firstFrameStart, V), row(video.logits, firstFrameStart, V))).toBeGreaterThan(1e-3);
    // BOS and the first timestamp text come before every image token: unchanged.
    for (let p = 0; p < firstFrameStart; p++) expect(maxAbsDiff(row(logits, p, V), row(video.logits, p, V)), `position ${p}`).toBe(0);
  });

  it('keeps text causal: changing a later text token leaves every earlier position unchanged', () => {
    const ids = Int32Array.from(video.prompt.inputIds);
    const at = ids.length - 6; // inside the question text
    expect(video.prompt.tokenTypeIds[at]).toBe(0);
    ids[at] = (ids[at] % 200) + 7;
    const logits = model.decoderLogits(ids, video.features, video.prompt.tokenTypeIds);
    for (let p = 0; p < at; p++) expect(maxAbsDiff(row(logits, p, V), row(video.logits, p, V)), `position ${p}`).toBe(0);
    expect(maxAbsDiff(row(logits, at, V), row(video.logits, at, V))).toBeGreaterThan(1e-3);
  });
});

describe('greedy generation', () => {
  it('gives, at every step, the logits of a full re-computation of the sequence so far', () => {
    const { prompt, features } = video;
    const g = model.generateGreedy({ inputIds: prompt.inputIds, imageFeatures: features, tokenTypeIds: prompt.tokenTypeIds, maxNewTokens: 5, eosId: -1 });
    expect(g.tokens.length).toBe(5);
    expect(g.stoppedAtEos).toBe(false);
    for (let k = 0; k < g.tokens.length; k++) {
      const ids = [...prompt.inputIds, ...g.tokens.slice(0, k)];
      const tt = [...prompt.tokenTypeIds, ...Array(k).fill(0)];
      const full = model.decoderLogits(ids, features, tt);
      expect(maxAbsDiff(g.stepLogits[k], row(full, ids.length - 1, V)), `step ${k}`).toBeLessThan(1e-5);
      expect(g.tokens[k]).toBe(row(full, ids.length - 1, V).indexOf(Math.max(...row(full, ids.length - 1, V))));
    }
  });

  it('stops at the end token and reports it', () => {
    const { prompt, features } = video;
    const free = model.generateGreedy({ inputIds: prompt.inputIds, imageFeatures: features, tokenTypeIds: prompt.tokenTypeIds, maxNewTokens: 3, eosId: -1 });
    const g = model.generateGreedy({ inputIds: prompt.inputIds, imageFeatures: features, tokenTypeIds: prompt.tokenTypeIds, maxNewTokens: 3, eosId: free.tokens[1] });
    expect(g.tokens).toEqual(free.tokens.slice(0, 2));
    expect(g.stoppedAtEos).toBe(true);
    expect(() => model.generateGreedy({ inputIds: prompt.inputIds, imageFeatures: features, tokenTypeIds: prompt.tokenTypeIds, maxNewTokens: 0 })).toThrow(/maxNewTokens/);
  });
});

describe('decoder layout', () => {
  /** Independent closed form of position 0, which attends only to itself (softmax = 1, RoPE angle 0). */
  async function position0Logits(id: number): Promise<Float32Array> {
    const t = async (n: string) => tensors.read(n);
    const { numHeads: H, numKvHeads: Hkv, headDim: D, intermediateSize: I, layerNormEps: eps } = config.text;
    const rms = (x: number[], w: Float32Array) => {
      const inv = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + eps);
      return x.map((v, i) => v * inv * w[i]);
    };
    const matvec = (w: Float32Array, x: number[], out: number) => Array.from({ length: out }, (_, o) => x.reduce((s, v, i) => s + v * w[o * x.length + i], 0));
    let x = Array.from((await t(names.embedding)).subarray(id * d, (id + 1) * d));
    for (let l = 0; l < config.text.numLayers; l++) {
      const b = names.block(l);
      const qkv = matvec(await t(`${b}.self_attn.att_proj.weight`), rms(x, await t(`${b}.attn_norm.weight`)), (H + 2 * Hkv) * D);
      const values = qkv.slice((H + Hkv) * D); // the last Hkv·D outputs are v
      const perHead: number[] = [];
      for (let h = 0; h < H; h++) perHead.push(...values.slice(Math.floor(h / (H / Hkv)) * D, (Math.floor(h / (H / Hkv)) + 1) * D));
      const attnOut = matvec(await t(`${b}.self_attn.attn_out.weight`), perHead, d);
      x = x.map((v, i) => v + attnOut[i]);
      const f = matvec(await t(`${b}.mlp.ff_proj.weight`), rms(x, await t(`${b}.ff_norm.weight`)), 2 * I);
      const act = Array.from({ length: I }, (_, i) => (f[I + i] / (1 + Math.exp(-f[I + i]))) * f[i]); // silu(gate = 2nd half) · up (1st half)
      const down = matvec(await t(`${b}.mlp.ff_out.weight`), act, d);
      x = x.map((v, i) => v + down[i]);
    }
    return Float32Array.from(matvec(await t(names.lmHead), rms(x, await t(names.finalNorm)), V));
  }

  it('matches a closed-form computation at position 0 (fused q|k|v split, GQA for values, ff_proj halves)', async () => {
    const ids = [42, 7, 99];
    const logits = model.decoderLogits(ids, new Float32Array(0), [0, 0, 0]);
    expect(maxAbsDiff(row(logits, 0, V), await position0Logits(42))).toBeLessThan(1e-4);
  });

  it('adds image features to the <im_patch> embeddings and reads new_embedding for ids ≥ vocab', async () => {
    const patch = config.tokens.imagePatch; // 322 = vocab + 2
    const features = Float32Array.from({ length: 2 * d }, (_, i) => (i % 7) - 3);
    const x = model.embed([5, patch, config.tokens.imageEnd, patch], features);
    const emb = await tensors.read(names.embedding);
    const extra = await tensors.read(names.newEmbedding);
    expect(Array.from(row(x, 0, d))).toEqual(Array.from(row(emb, 5, d)));
    expect(maxAbsDiff(row(x, 1, d), Array.from(row(extra, patch - V, d), (v, i) => v + features[i]))).toBeLessThan(1e-6);
    expect(Array.from(row(x, 2, d))).toEqual(Array.from(row(extra, config.tokens.imageEnd - V, d)));
    expect(maxAbsDiff(row(x, 3, d), Array.from(row(extra, patch - V, d), (v, i) => v + features[d + i]))).toBeLessThan(1e-6);
    expect(() => model.embed([patch], features)).toThrow(/2 image feature rows but 1 <im_patch>/);
    expect(() => model.embed([V + 16], new Float32Array(0))).toThrow(/outside the 336-row embedding/);
  });

  it('rotates with the rotate-half convention (element i pairs with i + D/2)', () => {
    const D = config.text.headDim;
    const pos = 37;
    const { cos, sin } = ropeTables(config, pos, 1);
    const x = Float32Array.from({ length: D }, (_, i) => i + 1);
    const y = x.slice();
    applyRope(y, 1, 1, D, cos, sin);
    for (let i = 0; i < D / 2; i++) {
      const angle = pos * config.text.ropeTheta ** ((-2 * i) / D);
      expect(y[i]).toBeCloseTo(x[i] * Math.cos(angle) - x[i + D / 2] * Math.sin(angle), 3);
      expect(y[i + D / 2]).toBeCloseTo(x[i + D / 2] * Math.cos(angle) + x[i] * Math.sin(angle), 3);
    }
  });
});

describe('groupedAttention', () => {
  it('gives query head h the KV head ⌊h / n_rep⌋, like an explicit repeat_interleave of K and V', () => {
    const H = 4;
    const Hkv = 2;
    const D = 3;
    const S = 5;
    let s = 3;
    const rand = (n: number) => Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1);
    const q = rand(S * H * D);
    const k = rand(S * Hkv * D);
    const v = rand(S * Hkv * D);
    const causal = (i: number, j: number) => j <= i;
    const out = groupedAttention(q, k, v, S, S, { numHeads: H, numKvHeads: Hkv, headDim: D }, causal);
    // Explicit per-head loop over K/V expanded to H heads: head h holds KV head ⌊h / 2⌋ (0,0,1,1).
    const expand = (t: Float32Array) => Float32Array.from({ length: S * H * D }, (_, i) => {
      const [p, h, e] = [Math.floor(i / (H * D)), Math.floor(i / D) % H, i % D];
      return t[p * Hkv * D + Math.floor(h / (H / Hkv)) * D + e];
    });
    const K = expand(k);
    const Vx = expand(v);
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < S; i++) {
        const scores = Array.from({ length: i + 1 }, (_, j) => {
          let dot = 0;
          for (let e = 0; e < D; e++) dot += q[(i * H + h) * D + e] * K[(j * H + h) * D + e];
          return Math.exp(dot / Math.sqrt(D));
        });
        const total = scores.reduce((a, b) => a + b, 0);
        for (let e = 0; e < D; e++) {
          const expected = scores.reduce((acc, w, j) => acc + (w / total) * Vx[(j * H + h) * D + e], 0);
          expect(out[(i * H + h) * D + e]).toBeCloseTo(expected, 5);
        }
      }
    }
  });
});

describe('vision stack', () => {
  it('concatenates the ViT blocks listed by vit_layers in that order (later block first)', async () => {
    expect(config.adapter.vitLayers).toEqual([3, 1]);
    const crop = video.pixels.subarray(0, FRAME);
    const base = model.vitFeatures(crop, 1);
    // Changing block 2 alters block 3's output (first slot) but not block 1's (second slot).
    const edited = await ReferenceModel.load(config, tensors.with(`${names.vitBlock(2)}.feed_forward.w2.weight`, (w) => w.forEach((v, i) => (w[i] = v * 3))));
    const other = edited.vitFeatures(crop, 1);
    const width = 2 * config.vit.hiddenSize;
    let firstSlot = 0;
    let secondSlot = 0;
    for (let p = 0; p < 729; p++) {
      for (let i = 0; i < config.vit.hiddenSize; i++) {
        firstSlot = Math.max(firstSlot, Math.abs(base[p * width + i] - other[p * width + i]));
        secondSlot = Math.max(secondSlot, Math.abs(base[p * width + config.vit.hiddenSize + i] - other[p * width + config.vit.hiddenSize + i]));
      }
    }
    expect(firstSlot).toBeGreaterThan(1e-3);
    expect(secondSlot).toBe(0);
  });

  it('pools padded windows exactly like the same windows without the padding slots', async () => {
    const inDim = 2 * config.vit.hiddenSize;
    const features = Float32Array.from({ length: 10 * inDim }, (_, i) => Math.sin(i * 0.37) * 2);
    const padded = model.poolAndProject(features, Int32Array.from([1, 2, -1, -1, 3, -1, 4, -1]), 4);
    const compact = model.poolAndProject(features, Int32Array.from([1, 2, 3, 4]), 2);
    expect(maxAbsDiff(padded, compact)).toBeLessThan(1e-5);
    // Without pooling_attention_mask the padding slots count (plain mean, bias-only keys attended).
    const json = tinyConfigJson();
    (json.adapter_config as Record<string, unknown>).pooling_attention_mask = false;
    const unmasked = await ReferenceModel.load(tinyConfig(json), tensors);
    expect(maxAbsDiff(unmasked.poolAndProject(features, Int32Array.from([1, 2, -1, -1, 3, -1, 4, -1]), 4), compact)).toBeGreaterThan(1e-3);
  });

  it('rejects inputs that do not fit the model', () => {
    expect(() => model.visionFeatures(new Float32Array(10), 1, Int32Array.from([0]), 1)).toThrow(/pixel_values has 10 values/);
    expect(() => model.poolAndProject(new Float32Array(2 * 48), Int32Array.from([0, 5]), 2)).toThrow(/past the 2 feature rows/);
  });
});

describe('loading', () => {
  it('names a tensor with the wrong shape', async () => {
    const bad = randomTensors(config, 1);
    const name = `${names.block(1)}.self_attn.att_proj.weight`;
    bad.tensors.set(name, { shape: [10, d], data: new Float32Array(10 * d) });
    await expect(ReferenceModel.load(config, bad)).rejects.toThrow(/self_attn\.att_proj\.weight has shape \[10, 36\], the config needs \[80, 36\]/);
  });

  it('names a missing tensor', async () => {
    const bad = randomTensors(config, 1);
    bad.tensors.delete(names.finalNorm);
    await expect(ReferenceModel.load(config, bad)).rejects.toThrow(/lacks tensor model\.transformer\.ln_f\.weight/);
  });
});
