// Converted graphs (src/molmo2/onnx) run in onnxruntime-node against the independent fp32 reference
// (src/molmo2/reference) on a tiny random Molmo2 whose widths all differ, with a video prompt and a
// two-image prompt built by the real preprocessing and prompt code.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Molmo2Config } from '../src/molmo2/config.ts';
import { imagePixelValues, planImage } from '../src/molmo2/image.ts';
import { hasFloat16Activations, type Dtype } from '../src/molmo2/manifest.ts';
import { exportVariant, type ExportOptions } from '../src/molmo2/onnx/export.ts';
import { fromFloat16 } from '../src/molmo2/fp16.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS, VISION_INPUTS, VISION_OUTPUTS } from '../src/molmo2/onnx/io.ts';
import { variantPrecision } from '../src/molmo2/onnx/layers.ts';
import { buildPrompt, type BuiltPrompt } from '../src/molmo2/prompt.ts';
import { ReferenceModel, type TensorSource } from '../src/molmo2/reference/index.ts';
import { molmo2ChatTemplate } from '../src/molmo2/reference/molmo2-4b-chat-template.ts';
import { argmax } from '../src/molmo2/reference/ops.ts';
import { maxRelativeError, MemoryTensors, overflowingTensors, randomTensors, testPicture, tinyConfig, tinyConfigJson, tinyTokenizer, twoImageTestCase, videoTestCase, type PromptCase } from '../src/molmo2/reference/testing.ts';
import { names } from '../src/molmo2/tensors.ts';
import { layerScope } from '../src/molmo2/onnx/decoder-parts.ts';
import { makeTinyCheckpoint } from './lib/tiny-checkpoint.ts';
import { readCheckpointFolder, SafetensorsCheckpoint } from './lib/checkpoint.ts';
import { asStoredBy } from './lib/stored-weights.ts';

// ---------------------------------------------------------------------------------------------
// Model, prompts and the reference
// ---------------------------------------------------------------------------------------------

/** The reference's tiny config with a pooling of 2 heads × 17 (adapter 34 wide; ViT 24, decoder 36). */
function distinctWidthsConfig(): Molmo2Config {
  const json = tinyConfigJson();
  Object.assign(json.adapter_config as Record<string, unknown>, { hidden_size: 34, num_attention_heads: 2, num_key_value_heads: 2, head_dim: 17 });
  return tinyConfig(json);
}

const config = distinctWidthsConfig();
const V = config.text.vocabSize;
const d = config.text.hiddenSize;
const STEPS = 32;

const picture = testPicture;

interface Case extends PromptCase {
  name: string;
}

const videoCase = (frameSeeds: number[]): Case => ({ name: 'video', ...videoTestCase(config, frameSeeds) });
const imagesCase = (): Case => ({ name: 'two images', ...twoImageTestCase(config) });

interface Expected {
  features: Float32Array;
  /** Logits of every prompt position under the Molmo2 mask. */
  logits: Float32Array;
  /** Greedy continuation (no stop token) and the logits that chose each token. */
  tokens: number[];
  stepLogits: Float32Array[];
}

async function expectations(model: ReferenceModel, c: Case): Promise<Expected> {
  const { prompt, pixels } = c;
  const features = model.visionFeatures(pixels, prompt.numCrops, prompt.pooledIdx, prompt.poolSize);
  const logits = model.decoderLogits(prompt.inputIds, features, prompt.tokenTypeIds);
  const g = model.generateGreedy({ inputIds: prompt.inputIds, imageFeatures: features, tokenTypeIds: prompt.tokenTypeIds, maxNewTokens: STEPS, eosId: -1 });
  return { features, logits, tokens: g.tokens, stepLogits: g.stepLogits };
}

// ---------------------------------------------------------------------------------------------
// onnxruntime sessions over the exported files
// ---------------------------------------------------------------------------------------------

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

interface Exported {
  dir: string;
  vision: string;
  decoder: string;
  log: string[];
}

async function exportTo(dtype: Dtype, extra: Partial<ExportOptions> = {}, weights: TensorSource = tensors, cfg: Molmo2Config = config): Promise<Exported> {
  const dir = mkdtempSync(join(tmpdir(), `onnx-parity-${dtype}-`));
  dirs.push(dir);
  const log: string[] = [];
  const files = await exportVariant({
    config: cfg,
    weights,
    dtype,
    target: 'cpu',
    log: (m) => log.push(m),
    write: async (p, bytes) => {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), bytes);
    },
    ...extra,
  });
  return { dir, vision: join(dir, files[0].model), decoder: join(dir, files[1].model), log };
}

const int64 = (values: ArrayLike<number>, dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(Array.from(values), (v) => BigInt(v)), dims);

class VisionSession {
  private constructor(private readonly session: ort.InferenceSession) {}
  static async open(path: string, options?: ort.InferenceSession.SessionOptions) {
    return new VisionSession(await ort.InferenceSession.create(path, options));
  }
  async features(c: Case): Promise<Float32Array> {
    const { prompt, pixels } = c;
    const out = await this.session.run({
      [VISION_INPUTS.pixelValues]: new ort.Tensor('float32', pixels, [prompt.numCrops, 729, 588]),
      [VISION_INPUTS.pooledIdx]: int64(prompt.pooledIdx, [prompt.pooledIdx.length / prompt.poolSize, prompt.poolSize]),
    });
    const f = out[VISION_OUTPUTS.imageFeatures];
    expect(f.dims).toEqual([prompt.imagePatchPositions.length, d]);
    return f.data as Float32Array;
  }
}

type Kv = ort.Tensor[];

class DecoderSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly kvType: 'float32' | 'float16',
  ) {}

  static async open(path: string, dtype: Dtype, options?: ort.InferenceSession.SessionOptions) {
    return new DecoderSession(await ort.InferenceSession.create(path, options), hasFloat16Activations(dtype) ? 'float16' : 'float32');
  }

  emptyCache(): Kv {
    const t = config.text;
    const dims = [1, t.numKvHeads, 0, t.headDim];
    return Array.from({ length: 2 * t.numLayers }, () => (this.kvType === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims)));
  }

  /** One run: new tokens (with their features and the token types of all positions) after `past`. */
  async run(ids: ArrayLike<number>, features: Float32Array, tokenTypes: ArrayLike<number>, past: Kv): Promise<{ logits: Float32Array; logitsDims: readonly number[]; present: Kv }> {
    const feeds: Record<string, ort.Tensor> = {
      [DECODER_INPUTS.inputIds]: int64(ids, [1, ids.length]),
      [DECODER_INPUTS.imageFeatures]: new ort.Tensor('float32', features, [features.length / d, d]),
      [DECODER_INPUTS.tokenTypeIds]: int64(tokenTypes, [1, tokenTypes.length]),
    };
    for (let i = 0; i < config.text.numLayers; i++) {
      feeds[DECODER_INPUTS.pastKey(i)] = past[2 * i];
      feeds[DECODER_INPUTS.pastValue(i)] = past[2 * i + 1];
    }
    const out = await this.session.run(feeds);
    const present: Kv = [];
    for (let i = 0; i < config.text.numLayers; i++) present.push(out[DECODER_OUTPUTS.presentKey(i)], out[DECODER_OUTPUTS.presentValue(i)]);
    return { logits: out[DECODER_OUTPUTS.logits].data as Float32Array, logitsDims: out[DECODER_OUTPUTS.logits].dims, present };
  }

  /**
   * Prefill, then one decode step per token. With `forced`, the steps feed those tokens (teacher
   * forcing along the reference); otherwise the graph's own argmax.
   */
  async generate(prompt: BuiltPrompt, features: Float32Array, steps: number, forced?: number[]): Promise<{ tokens: number[]; stepLogits: Float32Array[]; prefill: Kv }> {
    const tokenTypes = Array.from(prompt.tokenTypeIds);
    let r = await this.run(prompt.inputIds, features, tokenTypes, this.emptyCache());
    const prefill = r.present;
    const tokens: number[] = [];
    const stepLogits: Float32Array[] = [];
    for (let k = 0; k < steps; k++) {
      stepLogits.push(r.logits);
      tokens.push(argmax(r.logits));
      if (k === steps - 1) break;
      tokenTypes.push(0);
      r = await this.run([forced ? forced[k] : tokens[k]], new Float32Array(0), tokenTypes, r.present);
    }
    return { tokens, stepLogits, prefill };
  }
}

// ---------------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------------

const relErr = maxRelativeError;

/** Worst per-row relative error of two [rows, width] matrices. */
function worstRowErr(a: Float32Array, ref: Float32Array, width: number): number {
  let worst = 0;
  for (let r = 0; r < ref.length / width; r++) worst = Math.max(worst, relErr(a.subarray(r * width, (r + 1) * width), ref.subarray(r * width, (r + 1) * width)));
  return worst;
}

/** sqrt(Σ (a − ref)² / Σ ref²): the typical relative error, for reduced precision. */
function rmsErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - ref[i]) ** 2;
    scale += ref[i] ** 2;
  }
  return Math.sqrt(diff / scale);
}

const row = (x: Float32Array, r: number, width: number) => x.subarray(r * width, (r + 1) * width);
const asFloat32 = (t: ort.Tensor) => (t.type === 'float16' ? fromFloat16(t.data as Uint16Array) : (t.data as Float32Array));

interface Agreement {
  /** Worst per-row relative error of the image features. */
  features: number;
  featuresRms: number;
  prefill: number;
  /** rms relative error of the step logits along the reference's tokens. */
  stepsRms: number;
  /** Worst step-logit error along the reference's tokens. */
  steps: number;
  /** Share of the teacher-forced steps whose argmax is the reference's token. */
  agreement: number;
  greedy: number[];
}

async function measure(vision: VisionSession, decoder: DecoderSession, c: Case, e: Expected): Promise<Agreement> {
  const features = await vision.features(c);
  const forced = await decoder.generate(c.prompt, features, STEPS, e.tokens);
  const free = await decoder.generate(c.prompt, features, STEPS);
  const stepErrs = forced.stepLogits.map((l, k) => relErr(l, e.stepLogits[k]));
  return {
    features: worstRowErr(features, e.features, d),
    featuresRms: rmsErr(features, e.features),
    prefill: stepErrs[0],
    stepsRms: Math.sqrt(forced.stepLogits.reduce((s, l, k) => s + rmsErr(l, e.stepLogits[k]) ** 2, 0) / STEPS),
    steps: Math.max(...stepErrs),
    agreement: forced.tokens.filter((t, k) => t === e.tokens[k]).length / STEPS,
    greedy: free.tokens,
  };
}

// ---------------------------------------------------------------------------------------------

let tensors: MemoryTensors;
let reference: ReferenceModel;
const cases: { case: Case; expected: Expected }[] = [];
const fp32: Partial<{ files: Exported; vision: VisionSession; decoder: DecoderSession }> = {};

beforeAll(async () => {
  tensors = randomTensors(config, 7);
  reference = await ReferenceModel.load(config, tensors);
  for (const c of [videoCase([1, 2, 3]), imagesCase()]) cases.push({ case: c, expected: await expectations(reference, c) });
  fp32.files = await exportTo('fp32');
  fp32.vision = await VisionSession.open(fp32.files.vision);
  fp32.decoder = await DecoderSession.open(fp32.files.decoder, 'fp32');
}, 120_000);

describe('fp32 graphs match the reference', () => {
  it('writes the io.ts contract: vision_fp32 / decoder_fp32 under onnx/cpu with external data', async () => {
    expect(fp32.files!.vision.endsWith(join('onnx', 'cpu', 'vision_fp32.onnx'))).toBe(true);
    expect(existsSync(`${fp32.files!.decoder}_data`)).toBe(true);
    const { prompt } = cases[0].case;
    const r = await fp32.decoder!.run(prompt.inputIds, cases[0].expected.features, prompt.tokenTypeIds, fp32.decoder!.emptyCache());
    expect(r.logitsDims).toEqual([1, V]);
    expect(r.present[0].dims).toEqual([1, config.text.numKvHeads, prompt.inputIds.length, config.text.headDim]);
  });

  for (const which of [0, 1]) {
    it(`${which === 0 ? 'video' : 'two-image'} prompt: features, logits along the reference's tokens, 32 greedy tokens`, async () => {
      const { case: c, expected: e } = cases[which];
      const m = await measure(fp32.vision!, fp32.decoder!, c, e);
      expect(m.features).toBeLessThan(1e-4);
      expect(m.prefill).toBeLessThan(1e-4);
      expect(m.steps).toBeLessThan(1e-4);
      expect(m.greedy).toEqual(e.tokens);
      // The continuation is not degenerate, so the comparison covers many different positions.
      expect(new Set(e.tokens).size).toBeGreaterThan(3);
    });
  }

  it('matches the logits of every prompt position (test build with all-position logits)', async () => {
    const all = await exportTo('fp32', { decoder: { logits: 'all' } });
    const decoder = await DecoderSession.open(all.decoder, 'fp32');
    for (const { case: c, expected: e } of cases) {
      const r = await decoder.run(c.prompt.inputIds, e.features, c.prompt.tokenTypeIds, decoder.emptyCache());
      expect(r.logitsDims).toEqual([1, c.prompt.inputIds.length, V]);
      expect(worstRowErr(r.logits, e.logits, V), c.name).toBeLessThan(1e-4);
    }
  });
});

describe('prefill mask', () => {
  it("a later frame's pixels reach the K/V of an earlier image token (layer ≥ 1), not earlier text", async () => {
    const base = cases[0];
    const changed = videoCase([1, 2, 9]); // only the last frame differs
    const prompt = base.case.prompt;
    const run = async (c: Case) => (await fp32.decoder!.run(prompt.inputIds, await fp32.vision!.features(c), prompt.tokenTypeIds, fp32.decoder!.emptyCache())).present;
    const [a, b] = [await run(base.case), await run(changed)];
    const ids = Array.from(prompt.inputIds);
    const firstImageToken = prompt.tokenTypeIds.indexOf(1);
    const firstPatch = prompt.imagePatchPositions[0]; // a patch of frame 0
    const { numKvHeads: H, headDim: D, numLayers } = config.text;
    const kvAt = (t: ort.Tensor, pos: number) => {
      const all = asFloat32(t);
      const T = t.dims[2];
      return Float32Array.from({ length: H * D }, (_, i) => all[(Math.floor(i / D) * T + pos) * D + (i % D)]);
    };
    expect(firstImageToken).toBeGreaterThan(0);
    expect(firstPatch).toBeLessThan(ids.length / 2);
    for (let layer = 0; layer < numLayers; layer++) {
      for (const kv of [0, 1]) {
        const [ta, tb] = [a[2 * layer + kv], b[2 * layer + kv]];
        const diff = relErr(kvAt(tb, firstPatch), kvAt(ta, firstPatch));
        // Layer 0's K/V come from the token's own embedding; later layers have attended to frame 2.
        if (layer === 0) expect(diff, `layer 0 ${kv ? 'value' : 'key'}`).toBe(0);
        else expect(diff, `layer ${layer} ${kv ? 'value' : 'key'}`).toBeGreaterThan(1e-3);
        for (let p = 0; p < firstImageToken; p++) expect(relErr(kvAt(tb, p), kvAt(ta, p)), `layer ${layer} position ${p}`).toBe(0);
      }
    }
  });

  it('a causal-only graph fails the parity check', async () => {
    const causal = await exportTo('fp32', { decoder: { mask: 'causal', logits: 'all' } });
    const decoder = await DecoderSession.open(causal.decoder, 'fp32');
    for (const { case: c, expected: e } of cases) {
      const r = await decoder.run(c.prompt.inputIds, e.features, c.prompt.tokenTypeIds, decoder.emptyCache());
      const last = c.prompt.inputIds.length - 1;
      expect(worstRowErr(r.logits, e.logits, V), c.name).toBeGreaterThan(1e-2);
      expect(relErr(row(r.logits, last, V), row(e.logits, last, V)), `${c.name}, last position`).toBeGreaterThan(1e-3);
      // Positions before the first image token do not depend on the mask.
      const before = c.prompt.tokenTypeIds.indexOf(1);
      expect(worstRowErr(r.logits.subarray(0, before * V), e.logits.subarray(0, before * V), V)).toBeLessThan(1e-4);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Reduced precision
// ---------------------------------------------------------------------------------------------

describe('quantized graphs', () => {
  for (const dtype of ['q4', 'q4-int4vision'] as const) {
    const { vision, decoder } = variantPrecision(dtype);
    it(`${dtype} (vision ${vision}, decoder ${decoder}) equals the reference running on its reconstructed weights (accuracy level 0)`, async () => {
      const files = await exportTo(dtype, { q4: { accuracyLevel: 0 } });
      const visionSession = await VisionSession.open(files.vision);
      const decoder = await DecoderSession.open(files.decoder, dtype);
      const stored = await ReferenceModel.load(config, asStoredBy(dtype, tensors));
      for (const { case: c } of cases) {
        const e = await expectations(stored, c);
        const m = await measure(visionSession, decoder, c, e);
        expect(m.features, c.name).toBeLessThan(1e-4);
        expect(m.steps, c.name).toBeLessThan(1e-4);
        expect(m.greedy, c.name).toEqual(e.tokens);
      }
    });
  }

  it('the q4 vision graph holds 8-bit MatMulNBits and no 4-bit one; q4-int4vision the reverse; both share the int4 decoder', async () => {
    const bitsOf = async (path: string) => {
      const model = onnxProto.onnx.ModelProto.decode(readFileSync(path));
      return new Set(model.graph!.node!.filter((n) => n.opType === 'MatMulNBits').map((n) => Number(n.attribute!.find((a) => a.name === 'bits')!.i)));
    };
    const q4 = await exportTo('q4');
    const small = await exportTo('q4-int4vision');
    expect([...(await bitsOf(q4.vision))]).toEqual([8]);
    expect([...(await bitsOf(small.vision))]).toEqual([4]);
    expect(basename(small.decoder)).toBe('decoder_q4.onnx');
    expect(readFileSync(small.decoder).equals(readFileSync(q4.decoder))).toBe(true);
    expect(statSync(small.vision + '_data').size).toBeLessThan(statSync(q4.vision + '_data').size);
  });
});

// rms relative errors and teacher-forced greedy agreement measured on this tiny random model
// (printed by the test):
//   fp16              features 1.2e-3–1.3e-3, logits 7.9e-4–8.8e-4, agreement 100%
//   q4                features 2.6e-2, logits 0.14, agreement 47–78%   (vision int8)
//   q4f16             features 1.2e-3–1.3e-3, logits 0.14, agreement 50–78%   (vision fp16)
//   q4-int4vision     features 0.42–0.45, logits 0.21, agreement 44–69%
//   q4f16-int4vision  features 0.44–0.46, logits 0.20–0.21, agreement 38–69%
// RTN int4 costs ~8% rms per weight (blocks of 32) and this chaotic 4-block ViT / 2-layer decoder,
// with 24–52-wide layers, amplifies it far more than a real checkpoint would; an int4 ViT alone
// moves the image features 17× more than an int8 one. The bounds leave some headroom; the exact
// layout checks are the "quantized graphs" tests above.
const TOLERANCE: Record<Exclude<Dtype, 'fp32'>, { features: number; logits: number; agreement: number }> = {
  fp16: { features: 5e-3, logits: 5e-3, agreement: 0.9 },
  q4: { features: 0.06, logits: 0.2, agreement: 0.35 },
  q4f16: { features: 5e-3, logits: 0.2, agreement: 0.35 },
  'q4-int4vision': { features: 0.6, logits: 0.3, agreement: 0.3 },
  'q4f16-int4vision': { features: 0.6, logits: 0.3, agreement: 0.3 },
};

describe('reduced-precision graphs stay close to the reference', () => {
  for (const dtype of ['fp16', 'q4', 'q4f16', 'q4-int4vision', 'q4f16-int4vision'] as const) {
    it(`${dtype}`, async () => {
      const files = await exportTo(dtype);
      const vision = await VisionSession.open(files.vision);
      const decoder = await DecoderSession.open(files.decoder, dtype);
      for (const { case: c, expected: e } of cases) {
        const m = await measure(vision, decoder, c, e);
        console.log(
          `${dtype} ${c.name}: features rms ${m.featuresRms.toExponential(2)} (worst row ${m.features.toExponential(2)}), ` +
            `logits rms ${m.stepsRms.toExponential(2)} (prefill max ${m.prefill.toExponential(2)}, worst step ${m.steps.toExponential(2)}), ` +
            `greedy agreement along the reference ${(m.agreement * 100).toFixed(0)}% (${STEPS} steps)`,
        );
        const tol = TOLERANCE[dtype];
        expect(m.featuresRms).toBeLessThan(tol.features);
        expect(m.stepsRms).toBeLessThan(tol.logits);
        expect(m.agreement).toBeGreaterThanOrEqual(tol.agreement);
      }
    });
  }
});

describe('fp16 overflow guard', () => {
  const FP16_MAX = 65504;
  const maxAbs = (x: ArrayLike<number>) => Array.from(x).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

  /**
   * Runs an fp32 graph with the input and output of its MatMul under `scope` as extra outputs: the
   * values an unguarded fp16 graph would have to hold there. (onnxruntime's CPU EP computes fp16
   * MatMuls in fp32, dropping the Casts around them, so an fp16 graph cannot show the overflow here.)
   */
  async function matMulValues(path: string, scope: string, feeds: Record<string, ort.Tensor>): Promise<{ input: number; output: number }> {
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(path));
    const node = model.graph!.node!.find((n) => n.opType === 'MatMul' && n.name!.startsWith(`${scope}/`));
    expect(node, scope).toBeDefined();
    const [input, output] = [node!.input![0], node!.output![0]];
    for (const name of [input, output]) model.graph!.output!.push({ name, type: { tensorType: { elemType: onnxProto.onnx.TensorProto.DataType.FLOAT } } });
    const exposed = join(dirname(path), `exposed-${basename(path)}`);
    writeFileSync(exposed, onnxProto.onnx.ModelProto.encode(model).finish());
    const session = await ort.InferenceSession.create(exposed);
    const out = await session.run(feeds);
    await session.release();
    return { input: maxAbs(out[input].data as Float32Array), output: maxAbs(out[output].data as Float32Array) };
  }

  it('fp16 and q4f16 graphs stay finite and close to the fp32 reference where an unguarded fp16 graph would overflow', async () => {
    const big = overflowingTensors(tensors);
    const ref = await ReferenceModel.load(config, big);
    const c = cases[0].case;
    const e = await expectations(ref, c);
    const fp32Big = await exportTo('fp32', {}, big);
    // The fp32 graph equals the reference on this checkpoint too.
    const exact = await measure(await VisionSession.open(fp32Big.vision), await DecoderSession.open(fp32Big.decoder, 'fp32'), c, e);
    expect(exact.steps).toBeLessThan(1e-4);

    const { prompt, pixels } = c;
    const projector = await matMulValues(fp32Big.vision, '/vision/projector/w2', {
      [VISION_INPUTS.pixelValues]: new ort.Tensor('float32', pixels, [prompt.numCrops, 729, 588]),
      [VISION_INPUTS.pooledIdx]: int64(prompt.pooledIdx, [prompt.pooledIdx.length / prompt.poolSize, prompt.poolSize]),
    });
    const feeds: Record<string, ort.Tensor> = {
      [DECODER_INPUTS.inputIds]: int64(prompt.inputIds, [1, prompt.inputIds.length]),
      [DECODER_INPUTS.imageFeatures]: new ort.Tensor('float32', e.features, [e.features.length / d, d]),
      [DECODER_INPUTS.tokenTypeIds]: int64(prompt.tokenTypeIds, [1, prompt.tokenTypeIds.length]),
    };
    (await DecoderSession.open(fp32Big.decoder, 'fp32')).emptyCache().forEach((t, i) => (feeds[i % 2 ? DECODER_INPUTS.pastValue(i >> 1) : DECODER_INPUTS.pastKey(i >> 1)] = t));
    const decoder = await matMulValues(fp32Big.decoder, `${layerScope(0)}/mlp/down_proj`, feeds);
    console.log(`overflowing checkpoint: projector product ${projector.input.toExponential(2)}, layer 0 SwiGLU product ${decoder.input.toExponential(2)} → ff_out ${decoder.output.toExponential(2)} (fp16 max 65504)`);
    expect(projector.input).toBeGreaterThan(FP16_MAX);
    expect(decoder.input).toBeGreaterThan(FP16_MAX);
    expect(decoder.output).toBeGreaterThan(FP16_MAX);

    // Each fp16-activation variant against the reference on the weights it stores (fp16 has none
    // to reconstruct; MatMulNBits at accuracy level 0): what is left is fp16 rounding, held to the
    // fp16 variant's tolerance.
    for (const dtype of ['fp16', 'q4f16'] as const) {
      const files = await exportTo(dtype, { q4: { accuracyLevel: 0 } }, big);
      const own = dtype === 'fp16' ? e : await expectations(await ReferenceModel.load(config, asStoredBy(dtype, big)), c);
      const m = await measure(await VisionSession.open(files.vision), await DecoderSession.open(files.decoder, dtype), c, own);
      console.log(`${dtype} on the overflowing checkpoint: features rms ${m.featuresRms.toExponential(2)}, logits rms ${m.stepsRms.toExponential(2)}, agreement ${(m.agreement * 100).toFixed(0)}%`);
      expect(Number.isFinite(m.featuresRms) && Number.isFinite(m.stepsRms), dtype).toBe(true);
      const tol = TOLERANCE.fp16;
      expect(m.featuresRms, dtype).toBeLessThan(tol.features);
      expect(m.stepsRms, dtype).toBeLessThan(tol.logits);
      expect(m.agreement, dtype).toBeGreaterThanOrEqual(tol.agreement);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Export entry point
// ---------------------------------------------------------------------------------------------

describe('exportVariant', () => {
  it('builds the webgpu variant under onnx/webgpu (a portable decoder where head_dim does not suit GroupQueryAttention)', async () => {
    expect(config.text.headDim % 8).not.toBe(0);
    const files = await exportTo('q4f16', { target: 'webgpu' });
    expect(files.vision).toContain(join('onnx', 'webgpu', 'vision_q4f16.onnx'));
    expect(files.decoder).toContain(join('onnx', 'webgpu', 'decoder_q4f16.onnx'));
    const session = await ort.InferenceSession.create(files.decoder);
    expect(session.inputNames).toContain(DECODER_INPUTS.pastKey(0));
    expect(session.inputNames).not.toContain('position_ids');
    await session.release();
  });

  it('splits every tensor larger than a chunk and computes the same outputs', async () => {
    const limit = 8192; // the embedding table, positional embedding and lm_head all exceed it
    for (const dtype of ['fp32', 'q4'] as const) {
      const whole = dtype === 'fp32' ? fp32.files! : await exportTo(dtype);
      const split = await exportTo(dtype, { maxChunkBytes: limit });
      for (const graph of ['vision', 'decoder'] as const) {
        const stem = graph === 'vision' ? split.vision : split.decoder;
        const chunks = readdirSync(dirname(stem)).filter((f) => f.startsWith(`${basename(stem)}_data`));
        expect(chunks.length, `${dtype} ${graph}`).toBeGreaterThan(5);
        for (const f of chunks) expect(statSync(join(dirname(stem), f)).size).toBeLessThanOrEqual(limit);
      }
      const { case: c, expected: e } = cases[1];
      const [v1, v2] = [await VisionSession.open(whole.vision), await VisionSession.open(split.vision)];
      const [d1, d2] = [await DecoderSession.open(whole.decoder, dtype), await DecoderSession.open(split.decoder, dtype)];
      expect(relErr(await v2.features(c), await v1.features(c))).toBeLessThan(1e-6);
      const run = (s: DecoderSession) => s.run(c.prompt.inputIds, e.features, c.prompt.tokenTypeIds, s.emptyCache());
      expect(relErr((await run(d2)).logits, (await run(d1)).logits)).toBeLessThan(1e-6);
    }
  });

  it('names the tensor when the checkpoint does not fit the config', async () => {
    const bad = new MemoryTensors(new Map(tensors.tensors).set(names.finalNorm, { shape: [d + 1], data: new Float32Array(d + 1) }));
    await expect(exportTo('fp32', {}, bad)).rejects.toThrow(new RegExp(`${names.finalNorm}.*shape \\[${d + 1}\\]`));
    await expect(exportTo('int8' as Dtype)).rejects.toThrow(/unknown dtype "int8"/);
  });

  it('uses the embedding rows as lm_head when the checkpoint has no lm_head.weight (tied)', async () => {
    const tiedTensors = new Map(tensors.tensors);
    tiedTensors.delete(names.lmHead);
    const untied = new MemoryTensors(tiedTensors);
    const files = await exportTo('fp32', {}, { shape: (n) => untied.shape(n), read: (n) => untied.read(n) });
    const decoder = await DecoderSession.open(files.decoder, 'fp32');
    const embedding = await tensors.read(names.embedding);
    const tied = await ReferenceModel.load(config, tensors.with(names.lmHead, (w) => w.set(embedding.subarray(0, w.length))));
    const { case: c } = cases[1];
    const e = await expectations(tied, c);
    const r = await decoder.run(c.prompt.inputIds, e.features, c.prompt.tokenTypeIds, decoder.emptyCache());
    expect(relErr(r.logits, row(e.logits, c.prompt.inputIds.length - 1, V))).toBeLessThan(1e-4);
  });

  it('converts a safetensors checkpoint through the Node weight reader (published vocabulary and ViT depth)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-tiny-ckpt-'));
    dirs.push(dir);
    const ckpt = await makeTinyCheckpoint({ outDir: dir, seed: 3 });
    const reader = await SafetensorsCheckpoint.open(await readCheckpointFolder(dir));
    try {
      const files = await exportTo('fp32', {}, reader, ckpt.config);
      const model = await ReferenceModel.load(ckpt.config, reader);
      const t = ckpt.config.text;
      const plan = planImage(90, 60);
      const prompt = buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: ckpt.config.tokens, visual: { kind: 'images', plans: [plan] }, conversation: { question: 'Where?' } });
      const pixels = imagePixelValues(picture(90, 60, 4), 90, 60);
      const expected = model.visionFeatures(pixels, prompt.numCrops, prompt.pooledIdx, prompt.poolSize);
      const vision = await ort.InferenceSession.create(files.vision);
      const features = (
        await vision.run({
          [VISION_INPUTS.pixelValues]: new ort.Tensor('float32', pixels, [prompt.numCrops, 729, 588]),
          [VISION_INPUTS.pooledIdx]: int64(prompt.pooledIdx, [prompt.pooledIdx.length / prompt.poolSize, prompt.poolSize]),
        })
      )[VISION_OUTPUTS.imageFeatures].data as Float32Array;
      expect(worstRowErr(features, expected, t.hiddenSize)).toBeLessThan(1e-4);

      const { logits } = model.prefill(prompt.inputIds, expected, prompt.tokenTypeIds);
      const decoder = await ort.InferenceSession.create(files.decoder);
      const feeds: Record<string, ort.Tensor> = {
        [DECODER_INPUTS.inputIds]: int64(prompt.inputIds, [1, prompt.inputIds.length]),
        [DECODER_INPUTS.imageFeatures]: new ort.Tensor('float32', expected, [expected.length / t.hiddenSize, t.hiddenSize]),
        [DECODER_INPUTS.tokenTypeIds]: int64(prompt.tokenTypeIds, [1, prompt.inputIds.length]),
      };
      for (let i = 0; i < t.numLayers; i++) {
        for (const name of [DECODER_INPUTS.pastKey(i), DECODER_INPUTS.pastValue(i)]) feeds[name] = new ort.Tensor('float32', new Float32Array(0), [1, t.numKvHeads, 0, t.headDim]);
      }
      const out = (await decoder.run(feeds))[DECODER_OUTPUTS.logits].data as Float32Array;
      expect(out.length).toBe(t.vocabSize);
      expect(relErr(out, logits)).toBeLessThan(1e-4);
    } finally {
      await reader.close();
    }
  }, 120_000);
});
