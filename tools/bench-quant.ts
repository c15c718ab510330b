// `npm run bench:quant`: what each quantized variant costs in accuracy, and what MatMulNBits'
// accuracy_level changes, measured in one run on onnxruntime-node's CPU EP.
//
// 1. Per variant (q4, q4f16, q4-int4vision, q4f16-int4vision, fp16) on two random checkpoints (the
//    parity test's distinct-widths tiny model, seed 7, and the 'medium' widths of
//    tools/lib/tiny-checkpoint.ts, generated in memory), for a video and a two-image prompt: file
//    sizes, and along a reference's greedy tokens (teacher forcing) the largest logit error and the
//    top-1 agreement, (a) against the reference on the variant's own dequantized weights (asStoredBy:
//    what is left is the graph's arithmetic) and (b) against the fp32 reference (the quantization
//    itself — on random weights, which do not predict a real checkpoint's accuracy).
// 2. q4 and q4f16 at accuracy_level 0 and 4: error against the own-weights reference, and decode
//    time per token on the medium checkpoint. Exits non-zero when a level-0 fp32-activation variant
//    is off its own-weights reference by more than 1e-3 relative (a converter bug).
//
// The reference is src/molmo2/reference (JavaScript, fp32) for the tiny checkpoint. For the medium one
// it would take minutes per crop, so there it is the fp32 graph exported from the same weights, which
// tools/onnx-parity.test.ts holds to the JavaScript reference within 1e-4.
//
// BENCH_QUANT_SIZES=tiny (or medium) runs one checkpoint; BENCH_QUANT_MEDIUM_STEPS sets the medium
// step count (default 32).
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import os, { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseMolmo2Config, type Molmo2Config } from '../src/molmo2/config.ts';
import { fromFloat16 } from '../src/molmo2/fp16.ts';
import { hasFloat16Activations, type Dtype, type GraphFiles } from '../src/molmo2/manifest.ts';
import { exportVariant } from '../src/molmo2/onnx/export.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS, VISION_INPUTS, VISION_OUTPUTS } from '../src/molmo2/onnx/io.ts';
import { variantPrecision } from '../src/molmo2/onnx/layers.ts';
import type { BuiltPrompt } from '../src/molmo2/prompt.ts';
import { ReferenceModel } from '../src/molmo2/reference/index.ts';
import { MemoryTensors, randomTensors, tinyConfig, tinyConfigJson, twoImageTestCase, videoTestCase, type PromptCase } from '../src/molmo2/reference/testing.ts';
import { readAssetJson } from './lib/assets.ts';
import { asStoredBy } from './lib/stored-weights.ts';
import { scaledConfigJson } from './lib/tiny-checkpoint.ts';

const VARIANTS = ['q4', 'q4f16', 'q4-int4vision', 'q4f16-int4vision', 'fp16'] as const satisfies readonly Dtype[];
type Variant = (typeof VARIANTS)[number];
const LEVELED = ['q4', 'q4f16'] as const satisfies readonly Variant[];
/** A level-0 fp32-activation variant further than this (relative) from its own-weights reference is a converter bug. */
const LEVEL0_LIMIT = 1e-3;
const SEED = 7;

// ---------------------------------------------------------------------------------------------
// Checkpoints and prompts
// ---------------------------------------------------------------------------------------------

interface Case extends PromptCase {
  name: string;
}

interface Checkpoint {
  name: 'tiny' | 'medium';
  config: Molmo2Config;
  tensors: MemoryTensors;
  steps: number;
  cases: Case[];
  /** How the reference is computed. */
  reference: 'js' | 'graph';
}

/** The parity test's tiny config with a pooling of 2 heads × 17 (adapter 34 wide; ViT 24, decoder 36). */
function distinctWidthsConfig(): Molmo2Config {
  const json = tinyConfigJson();
  Object.assign(json.adapter_config as Record<string, unknown>, { hidden_size: 34, num_attention_heads: 2, num_key_value_heads: 2, head_dim: 17 });
  return tinyConfig(json);
}

async function mediumConfig(): Promise<Molmo2Config> {
  const check = parseMolmo2Config(await scaledConfigJson('medium'), await readAssetJson('generation_config.json'));
  if (!check.config) throw new Error(`medium config is invalid: ${[...check.missing, ...check.errors].join('; ')}`);
  return check.config;
}

function casesFor(config: Molmo2Config): Case[] {
  return [
    { name: 'video', ...videoTestCase(config, [1, 2, 3]) },
    { name: 'two images', ...twoImageTestCase(config) },
  ];
}

// ---------------------------------------------------------------------------------------------
// Exported graphs in onnxruntime-node
// ---------------------------------------------------------------------------------------------

interface Exported {
  dir: string;
  vision: string;
  decoder: string;
  visionBytes: number;
  decoderBytes: number;
}

/** Exports go to memory (tmpfs) where there is one: the fp32 graphs of the medium checkpoint are ~0.7 GB each. */
const scratch = existsSync('/dev/shm') && statfsSync('/dev/shm').bavail * statfsSync('/dev/shm').bsize > 4 * 2 ** 30 ? '/dev/shm' : tmpdir();
const dirs = new Set<string>();
process.on('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

function bytesOf(dir: string, files: GraphFiles): number {
  return [files.model, ...files.externalData].reduce((s, f) => s + statSync(join(dir, f)).size, 0);
}

async function exportTo(config: Molmo2Config, weights: MemoryTensors, dtype: Dtype, accuracyLevel?: number): Promise<Exported> {
  const dir = mkdtempSync(join(scratch, `bench-quant-${dtype}-`));
  dirs.add(dir);
  const files = await exportVariant({
    config,
    weights,
    dtype,
    target: 'cpu',
    // Every MatMulNBits (decoder and vision encoder) at the level compared.
    q4: accuracyLevel === undefined ? undefined : { accuracyLevel, visionAccuracyLevel: accuracyLevel },
    write: async (p, bytes) => {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), bytes);
    },
  });
  return { dir, vision: join(dir, files[0].model), decoder: join(dir, files[1].model), visionBytes: bytesOf(dir, files[0]), decoderBytes: bytesOf(dir, files[1]) };
}

function remove(e: Exported): void {
  rmSync(e.dir, { recursive: true, force: true });
  dirs.delete(e.dir);
}

const int64 = (values: ArrayLike<number>, dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(Array.from(values), (v) => BigInt(v)), dims);

type Kv = ort.Tensor[];

interface Run {
  tokens: number[];
  stepLogits: Float32Array[];
  /** Wall time of each decode step (the prefill excluded), ms. */
  stepMs: number[];
}

/** The vision and decoder graphs of one export, as the parity test drives them. */
class Graphs {
  private constructor(
    private readonly config: Molmo2Config,
    private readonly vision: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
    private readonly kvType: 'float32' | 'float16',
  ) {}

  static async open(config: Molmo2Config, files: Exported, dtype: Dtype): Promise<Graphs> {
    const [vision, decoder] = [await ort.InferenceSession.create(files.vision), await ort.InferenceSession.create(files.decoder)];
    return new Graphs(config, vision, decoder, hasFloat16Activations(dtype) ? 'float16' : 'float32');
  }

  async release(): Promise<void> {
    await this.vision.release();
    await this.decoder.release();
  }

  async features(c: Case): Promise<Float32Array> {
    const { prompt, pixels } = c;
    const out = await this.vision.run({
      [VISION_INPUTS.pixelValues]: new ort.Tensor('float32', pixels, [prompt.numCrops, 729, 588]),
      [VISION_INPUTS.pooledIdx]: int64(prompt.pooledIdx, [prompt.pooledIdx.length / prompt.poolSize, prompt.poolSize]),
    });
    const f = out[VISION_OUTPUTS.imageFeatures];
    return f.type === 'float16' ? fromFloat16(f.data as Uint16Array) : (f.data as Float32Array);
  }

  private emptyCache(): Kv {
    const t = this.config.text;
    const dims = [1, t.numKvHeads, 0, t.headDim];
    return Array.from({ length: 2 * t.numLayers }, () => (this.kvType === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims)));
  }

  private async run(ids: ArrayLike<number>, features: Float32Array, tokenTypes: ArrayLike<number>, past: Kv): Promise<{ logits: Float32Array; present: Kv }> {
    const { numLayers, hiddenSize: d } = this.config.text;
    const feeds: Record<string, ort.Tensor> = {
      [DECODER_INPUTS.inputIds]: int64(ids, [1, ids.length]),
      [DECODER_INPUTS.imageFeatures]: new ort.Tensor('float32', features, [features.length / d, d]),
      [DECODER_INPUTS.tokenTypeIds]: int64(tokenTypes, [1, tokenTypes.length]),
    };
    for (let i = 0; i < numLayers; i++) {
      feeds[DECODER_INPUTS.pastKey(i)] = past[2 * i];
      feeds[DECODER_INPUTS.pastValue(i)] = past[2 * i + 1];
    }
    const out = await this.decoder.run(feeds);
    const present: Kv = [];
    for (let i = 0; i < numLayers; i++) present.push(out[DECODER_OUTPUTS.presentKey(i)], out[DECODER_OUTPUTS.presentValue(i)]);
    return { logits: out[DECODER_OUTPUTS.logits].data as Float32Array, present };
  }

  /** Prefill, then one decode step per token: `forced` tokens (teacher forcing) or the graph's own argmax. */
  async generate(prompt: BuiltPrompt, features: Float32Array, steps: number, forced?: number[]): Promise<Run> {
    const tokenTypes = Array.from(prompt.tokenTypeIds);
    let r = await this.run(prompt.inputIds, features, tokenTypes, this.emptyCache());
    const out: Run = { tokens: [], stepLogits: [], stepMs: [] };
    for (let k = 0; k < steps; k++) {
      out.stepLogits.push(r.logits);
      out.tokens.push(argmax(r.logits));
      if (k === steps - 1) break;
      tokenTypes.push(0);
      const t0 = performance.now();
      r = await this.run([forced ? forced[k] : out.tokens[k]], new Float32Array(0), tokenTypes, r.present);
      out.stepMs.push(performance.now() - t0);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

interface Expected {
  tokens: number[];
  stepLogits: Float32Array[];
}

/** Greedy continuations (no stop token) of every case, by the JS reference or by an fp32 graph, on `weights`. */
async function expectations(ck: Checkpoint, weights: MemoryTensors): Promise<Expected[]> {
  if (ck.reference === 'js') {
    const model = await ReferenceModel.load(ck.config, weights);
    return ck.cases.map(({ prompt, pixels }) => {
      const features = model.visionFeatures(pixels, prompt.numCrops, prompt.pooledIdx, prompt.poolSize);
      const g = model.generateGreedy({ inputIds: prompt.inputIds, imageFeatures: features, tokenTypeIds: prompt.tokenTypeIds, maxNewTokens: ck.steps, eosId: -1 });
      return { tokens: g.tokens, stepLogits: g.stepLogits };
    });
  }
  const files = await exportTo(ck.config, weights, 'fp32');
  const graphs = await Graphs.open(ck.config, files, 'fp32');
  try {
    const out: Expected[] = [];
    for (const c of ck.cases) out.push(await graphs.generate(c.prompt, await graphs.features(c), ck.steps));
    return out;
  } finally {
    await graphs.release();
    remove(files);
  }
}

// ---------------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------------

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

interface Err {
  /** max |Δlogit| over every step. */
  abs: number;
  /** Worst step's max |Δlogit| ÷ max |reference logit|. */
  rel: number;
  /** Share of the teacher-forced steps whose argmax is the reference's token. */
  top1: number;
}

function compare(run: Run, e: Expected): Err {
  let abs = 0;
  let rel = 0;
  e.stepLogits.forEach((ref, k) => {
    const got = run.stepLogits[k];
    if (got.length !== ref.length) throw new Error(`logits of ${got.length} values, expected ${ref.length}`);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < ref.length; i++) {
      diff = Math.max(diff, Math.abs(got[i] - ref[i]));
      scale = Math.max(scale, Math.abs(ref[i]));
    }
    abs = Math.max(abs, diff);
    rel = Math.max(rel, diff / scale);
  });
  return { abs, rel, top1: run.tokens.filter((t, k) => t === e.tokens[k]).length / e.tokens.length };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

interface VariantRow {
  checkpoint: string;
  dtype: Variant;
  accuracyLevel: number;
  visionBytes: number;
  decoderBytes: number;
  perCase: { prompt: string; own: Err; fp32?: Err }[];
  /** Median decode step time, ms, over both prompts' teacher-forced steps along the own-weights reference (after the prefill and the first step). */
  decodeMs: number;
}

/**
 * Exports `dtype` at `accuracyLevel` and runs each case teacher-forced along the own-weights
 * reference (and along the fp32 reference when given).
 */
async function measureVariant(ck: Checkpoint, dtype: Variant, accuracyLevel: number, own: Expected[], fp32?: Expected[]): Promise<VariantRow> {
  const files = await exportTo(ck.config, ck.tensors, dtype, accuracyLevel);
  const graphs = await Graphs.open(ck.config, files, dtype);
  const row: VariantRow = { checkpoint: ck.name, dtype, accuracyLevel, visionBytes: files.visionBytes, decoderBytes: files.decoderBytes, perCase: [], decodeMs: NaN };
  const times: number[] = [];
  try {
    for (const [i, c] of ck.cases.entries()) {
      const features = await graphs.features(c);
      const a = await graphs.generate(c.prompt, features, ck.steps, own[i].tokens);
      // Timed: the decode steps after the first (the prefill and the first step warm the session up).
      times.push(...a.stepMs.slice(1));
      const b = fp32 ? await graphs.generate(c.prompt, features, ck.steps, fp32[i].tokens) : undefined;
      row.perCase.push({ prompt: c.name, own: compare(a, own[i]), fp32: b && fp32 ? compare(b, fp32[i]) : undefined });
    }
  } finally {
    await graphs.release();
    remove(files);
  }
  row.decodeMs = median(times);
  return row;
}

const since = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(0)} s`;

async function measureCheckpoint(ck: Checkpoint, log: (m: string) => void): Promise<VariantRow[]> {
  const t0 = performance.now();
  const fp32 = await expectations(ck, ck.tensors);
  log(`  ${ck.name}: fp32 reference (${ck.reference === 'js' ? 'JS reference' : 'fp32 graph'}) — ${since(t0)}`);
  const rows: VariantRow[] = [];
  for (const dtype of VARIANTS) {
    const own = await expectations(ck, asStoredBy(dtype, ck.tensors));
    rows.push(await measureVariant(ck, dtype, 4, own, fp32));
    if ((LEVELED as readonly Variant[]).includes(dtype)) rows.push(await measureVariant(ck, dtype, 0, own));
    log(`  ${ck.name}: ${dtype} — ${since(t0)}`);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

const mb = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`);
const e2 = (x: number) => x.toExponential(2);
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function errorTable(rows: VariantRow[]): string {
  const out: string[][] = [];
  for (const r of rows.filter((r) => r.accuracyLevel === 4)) {
    const p = variantPrecision(r.dtype);
    r.perCase.forEach((c, i) => {
      out.push([
        i === 0 ? r.checkpoint : '',
        i === 0 ? `${r.dtype} (vision ${p.vision}, decoder ${p.decoder}, ${p.activations})` : '',
        i === 0 ? mb(r.visionBytes) : '',
        i === 0 ? mb(r.decoderBytes) : '',
        c.prompt,
        e2(c.own.abs),
        e2(c.own.rel),
        pct(c.own.top1),
        e2(c.fp32!.abs),
        e2(c.fp32!.rel),
        pct(c.fp32!.top1),
      ]);
    });
  }
  return table(['checkpoint', 'variant', 'vision', 'decoder', 'prompt', '(a) max \\|Δ\\|', '(a) rel', '(a) top-1', '(b) max \\|Δ\\|', '(b) rel', '(b) top-1'], out);
}

function levelTable(rows: VariantRow[]): { md: string; summary: string[]; failures: string[] } {
  const out: string[][] = [];
  const summary: string[] = [];
  const failures: string[] = [];
  const checkpoints = [...new Set(rows.map((r) => r.checkpoint))];
  for (const ck of checkpoints) {
    for (const dtype of LEVELED) {
      const [l0, l4] = [0, 4].map((l) => rows.find((r) => r.checkpoint === ck && r.dtype === dtype && r.accuracyLevel === l)!);
      for (const r of [l0, l4]) {
        r.perCase.forEach((c, i) => {
          out.push([i === 0 ? ck : '', i === 0 ? `${dtype}` : '', i === 0 ? `${r.accuracyLevel}` : '', c.prompt, e2(c.own.abs), e2(c.own.rel), pct(c.own.top1), i === 0 && ck === 'medium' ? r.decodeMs.toFixed(2) : '']);
        });
      }
      const worst = (r: VariantRow) => Math.max(...r.perCase.map((c) => c.own.rel));
      const [w0, w4] = [worst(l0), worst(l4)];
      let line = `${ck} ${dtype}: level ${w0 <= w4 ? 0 : 4} has the smaller error (worst rel ${e2(Math.min(w0, w4))} vs ${e2(Math.max(w0, w4))}, ${(Math.max(w0, w4) / Math.max(Math.min(w0, w4), 1e-30)).toFixed(0)}×)`;
      if (ck === 'medium') {
        const d = l0.decodeMs - l4.decodeMs;
        line += `; decode ${l0.decodeMs.toFixed(2)} ms/token at level 0 vs ${l4.decodeMs.toFixed(2)} at level 4 (level 0 ${d >= 0 ? 'costs' : 'saves'} ${Math.abs(d).toFixed(2)} ms/token, ${((Math.abs(d) / l4.decodeMs) * 100).toFixed(0)}%)`;
      }
      summary.push(line);
      if (!hasFloat16Activations(dtype) && w0 > LEVEL0_LIMIT) failures.push(`${ck} ${dtype} at accuracy level 0 is ${e2(w0)} (relative) off the reference on its own weights (limit ${LEVEL0_LIMIT}): a converter bug`);
    }
  }
  return { md: table(['checkpoint', 'variant', 'accuracy_level', 'prompt', 'max \\|Δ\\| vs own weights', 'rel', 'top-1', 'decode ms/token (medium)'], out), summary, failures };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const started = performance.now();
  const load0 = loadavg()[0];
  const sizes = (process.env.BENCH_QUANT_SIZES ?? 'tiny,medium').split(',').map((s) => s.trim());
  const mediumSteps = Number(process.env.BENCH_QUANT_MEDIUM_STEPS ?? 32);
  const log = (m: string) => console.log(m);
  const checkpoints: (() => Promise<Checkpoint>)[] = [];
  if (sizes.includes('tiny')) {
    checkpoints.push(async () => {
      const config = distinctWidthsConfig();
      return { name: 'tiny', config, tensors: randomTensors(config, SEED), steps: 32, cases: casesFor(config), reference: 'js' };
    });
  }
  if (sizes.includes('medium')) {
    checkpoints.push(async () => {
      const config = await mediumConfig();
      const t0 = performance.now();
      const tensors = randomTensors(config, SEED);
      log(`  medium: random weights (${(tensors.tensors.size)} tensors) — ${since(t0)}`);
      return { name: 'medium', config, tensors, steps: mediumSteps, cases: casesFor(config), reference: 'graph' };
    });
  }
  console.log(`quantization benchmark (onnxruntime-node ${ort.env.versions.common} CPU EP, target cpu, random weights seed ${SEED})`);
  const rows: VariantRow[] = [];
  const described: string[] = [];
  for (const make of checkpoints) {
    const ck = await make();
    const t = ck.config.text;
    const prompts = ck.cases.map((c) => `${c.name}: ${c.prompt.inputIds.length} tokens, ${c.prompt.numCrops} crops`).join('; ');
    described.push(
      `${ck.name}: ViT ${ck.config.vit.hiddenSize} wide, decoder ${t.hiddenSize} wide × ${t.numLayers} layers, vocabulary ${t.vocabSize}; ${prompts}; ${ck.steps} teacher-forced steps; reference: ${ck.reference === 'js' ? 'src/molmo2/reference (JS, fp32)' : 'the fp32 graph on the same weights (the JS reference takes about a minute per crop at these widths; the parity test holds the fp32 graph to it within 1e-4)'}`,
    );
    rows.push(...(await measureCheckpoint(ck, log)));
  }

  const errors = errorTable(rows);
  const levels = levelTable(rows);
  const notes = [
    '(a) = against the reference running on the variant\'s own dequantized weights (asStoredBy: int4/int8 codes × scales, fp16-rounded tables and weights; the LM head\'s int4 scales are float32 even in fp16-activation variants): the graph\'s own arithmetic — the decoder\'s accuracy_level 4 (int8 activations; the vision encoder runs at level 0, as shipped) and, for fp16-activation variants, fp16 rounding.',
    '(b) = against the fp32 reference: the effect of quantization. RANDOM-WEIGHT FIGURES: these chaotic random models amplify weight rounding far more than a trained checkpoint, so (b) does not predict real accuracy; it only ranks the variants.',
    'max |Δ| = largest logit difference over all steps; rel = worst step\'s max |Δ| ÷ max |reference logit|; top-1 = share of teacher-forced steps whose argmax is the reference\'s greedy token. Sizes: .onnx + .onnx_data files of the variant\'s vision and decoder graphs.',
  ];
  const text = [
    '',
    ...described.map((d) => `- ${d}`),
    '',
    '1. error per variant (as converted: decoder accuracy_level 4, vision encoder 0)',
    '',
    errors,
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    '2. MatMulNBits accuracy_level of every quantized linear, decoder and vision encoder (0 = activations in their own type, 4 = int8): error vs the reference on the own weights; decode time per token (median over the decode steps of both prompts, each after a prefill and a first step as warm-up; medium checkpoint, onnxruntime-node CPU EP, default threads)',
    '',
    levels.md,
    '',
    ...levels.summary.map((s) => `- ${s}`),
    ...(levels.failures.length ? ['', ...levels.failures.map((f) => `- FAIL ${f}`)] : [`- level-0 fp32-activation variants within ${LEVEL0_LIMIT} (relative) of the reference on their own weights: yes`]),
    '',
    `- run time ${since(started)}; load average ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at the end on ${os.availableParallelism()} cores (times taken while other work shares them are slower and noisier)`,
  ].join('\n');
  console.log(text);
  console.log(
    `BENCH_RESULT ${JSON.stringify({
      figures: {
        markdown: text,
        rows: rows.map((r) => ({ ...r, decodeMs: Number.isFinite(r.decodeMs) ? r.decodeMs : null })),
        failures: levels.failures,
      },
    })}`,
  );
  if (levels.failures.length) process.exitCode = 1;
}

await main();
