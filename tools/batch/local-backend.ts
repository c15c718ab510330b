// The batch tool's local backend: a converted model folder (the app's format, see src/molmo2/manifest.ts)
// run by onnxruntime-node, with the app's own preprocessing, prompt, tokenizer and greedy decoding, so
// the same frames give the browser's text.
//
// Which graphs: both targets of a converted folder run on onnxruntime-node's CPU execution provider.
// The WebGPU-target decoder's static KV cache (GroupQueryAttention writing into the buffers bound as
// both past and present) works with CPU tensors as well (src/molmo2/onnx/decoder-webgpu.test.ts), and
// those are the graphs the browser loads, so they are preferred; the portable (cpu-target) graphs are
// used when a folder has no WebGPU-target graphs of the dtype. The default dtype is q4 (int4 decoder,
// fp32 activations): what the browser runs on a GPU without shader-f16, and fast on CPUs. fp16-activation
// variants (q4f16, fp16) run too, but CPUs compute fp16 slowly; they are used only when asked for.
// Quantized matmuls run at accuracy_level 0 (see LocalBackendOptions.accuracyLevel): the browser's
// arithmetic where WebGPU has no int8 (DP4A) path, e.g. SwiftShader; a GPU that takes that path
// rounds differently, so its q4 text may differ after some tokens.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import type * as Ort from 'onnxruntime-node';
import { fromFloat16 } from '../../src/molmo2/fp16.ts';
import { hasFloat16Activations, type Dtype, type GraphFiles, type Manifest, type ModelVariant, type Target } from '../../src/molmo2/manifest.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS, VISION_INPUTS, VISION_OUTPUTS, WEBGPU_DECODER_INPUTS, WEBGPU_DECODER_OUTPUTS } from '../../src/molmo2/onnx/io.ts';
import { parseManifest } from '../../src/runtime/manifest-check.ts';
import { MODEL_TEXT_FILES, readModelTexts } from '../../src/runtime/model-texts.ts';
import { allPixels, concatFloat32, InputError, planPictures, runPooledIdx, visionBatches, type Picture, type PlannedInputs, type PlanVisual, type PrepareOptions } from '../../src/runtime/visual-plan.ts';
import type { BackendAnswer, BackendQuestion, BatchBackend, SampledFrame } from './types.ts';

export interface LocalBackendOptions {
  /** Weights to run (default q4, else the first the folder has of q4, fp32, q4-int4vision, q4f16, …). */
  dtype?: Dtype;
  /** Graphs to run (default the WebGPU-target graphs when the folder has them, else the portable ones). */
  target?: Target;
  log?: (message: string) => void;
  /** onnxruntime-node execution providers (default CPU), e.g. ['cuda', 'cpu'] with a CUDA build. */
  executionProviders?: Ort.InferenceSession.ExecutionProviderConfig[];
  /** Check every file of the variant against the manifest's SHA-256 at open (default true; ~0.4 GB/s). */
  verify?: boolean;
  /** Crops per vision run (default 8): bounds the vision encoder's working memory. */
  cropsPerVisionRun?: number;
  /**
   * MatMulNBits accuracy_level to run the quantized graphs at (default 0), or 'as-converted'. The
   * converter asks for 4 in the decoder (int8 activations, for DP4A on GPUs); onnxruntime's CPU EP
   * honours it with ~1e-2 relative logit error, enough to change greedy tokens on the tiny test model
   * (bench/REPORT.md), and was not faster there. Level 0 computes with fp32 activations, as WebGPU does
   * without DP4A (e.g. SwiftShader) and as the reference does.
   */
  accuracyLevel?: number | 'as-converted';
}

/** Dtypes in the order the local backend prefers them: fp32 activations first (CPUs are slow at fp16). */
const LOCAL_DTYPES: readonly Dtype[] = ['q4', 'fp32', 'q4-int4vision', 'q4f16', 'q4f16-int4vision', 'fp16'];
const DEFAULT_CROPS_PER_RUN = 8;

// onnxruntime-node (CommonJS) is required on behalf of the package root, not of this file: Playwright,
// which loads this file in e2e/batch-local.spec.ts, maps a TypeScript file's imports through the
// `paths` of every tsconfig the root one references, and tsconfig.molmo2.json maps onnxruntime-node to
// an empty module (its layer must not use it).
const ort = createRequire(new URL('../../package.json', import.meta.url))('onnxruntime-node') as typeof Ort;

/** The variant to run, or a plain refusal naming what the folder has. */
export function chooseLocalVariant(manifest: Manifest, opts: { dtype?: Dtype; target?: Target } = {}): ModelVariant {
  const have = manifest.variants.map((v) => `${v.dtype} (${v.target})`).join(', ');
  const dtypes = opts.dtype ? [opts.dtype] : LOCAL_DTYPES;
  const targets: Target[] = opts.target ? [opts.target] : ['webgpu', 'cpu'];
  for (const dtype of dtypes) {
    for (const target of targets) {
      const v = manifest.variants.find((x) => x.dtype === dtype && x.target === target);
      if (v) return v;
    }
  }
  const wanted = `${opts.dtype ?? 'any dtype'}${opts.target ? ` for the ${opts.target} target` : ''}`;
  throw new Error(`${manifest.name} has no ${wanted}; it was converted to ${have}. Choose one of those, or convert it again with \`npm run convert -- … --dtype q4\`.`);
}

/**
 * The graph file to load: as converted, or a copy whose MatMulNBits nodes compute at accuracy_level
 * `level`. The copy (small: the weights stay in their external-data files) is written beside the
 * original, because onnxruntime reads external data only from the graph file's own folder (it refuses
 * links out of it); the caller removes it once the session is made. undefined: no copy is needed.
 */
async function graphCopyAt(folder: string, graph: GraphFiles, level: number): Promise<string | undefined> {
  const model = onnxProto.onnx.ModelProto.decode(await readFile(join(folder, graph.model)));
  let changed = 0;
  for (const node of model.graph?.node ?? []) {
    if (node.opType !== 'MatMulNBits') continue;
    const attr = node.attribute?.find((a) => a.name === 'accuracy_level');
    if (attr && Number(attr.i) !== level) {
      attr.i = level;
      changed++;
    } else if (!attr && level !== 0) {
      (node.attribute ??= []).push({ name: 'accuracy_level', type: onnxProto.onnx.AttributeProto.AttributeType.INT, i: level });
      changed++;
    }
  }
  if (changed === 0) return undefined;
  const copy = join(folder, dirname(graph.model), `.${basename(graph.model, '.onnx')}.accuracy-level-${level}.${process.pid}.onnx`);
  await writeFile(copy, onnxProto.onnx.ModelProto.encode(model).finish());
  return copy;
}

/** SHA-256 of a file, read as a stream (model files are gigabytes). */
function sha256OfFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 4 << 20 })
      .on('data', (b) => hash.update(b))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Each file is there, whole (size, and its hash when `hash` is set); throws naming every bad one. */
async function checkFiles(folder: string, manifest: Manifest, paths: string[], hash: boolean): Promise<void> {
  const problems: string[] = [];
  for (const path of paths) {
    const f = manifest.files.find((x) => x.path === path);
    if (!f) continue;
    const size = await stat(join(folder, path)).then((s) => s.size, () => -1);
    if (size < 0) problems.push(`${path} is missing`);
    else if (size !== f.bytes) problems.push(`${path} has ${size} bytes, the manifest says ${f.bytes} (cut short or replaced?)`);
    else if (hash && (await sha256OfFile(join(folder, path))) !== f.sha256) problems.push(`${path} does not match its SHA-256 in the manifest (damaged or replaced)`);
  }
  if (problems.length) throw new Error(`${folder} is not usable:\n- ${problems.join('\n- ')}\nCopy or convert the model again.`);
}

const int64 = (values: ArrayLike<number>, dims: number[]) => {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor('int64', data, dims);
};

const zeros = (type: Ort.Tensor.Type, dims: number[]) => {
  const n = dims.reduce((a, b) => a * b, 1);
  return type === 'float16' ? new ort.Tensor('float16', new Uint16Array(n), dims) : new ort.Tensor('float32', new Float32Array(n), dims);
};

function inputType(session: Ort.InferenceSession, name: string): Ort.Tensor.Type | undefined {
  const m = session.inputMetadata.find((x) => x.name === name);
  return m && m.isTensor ? m.type : undefined;
}

/** First index of the largest value: the browser runtime's argmax and the graph's ArgMax agree on ties. */
function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

interface Dims {
  layers: number;
  kvHeads: number;
  headDim: number;
  hidden: number;
}

/**
 * The decoder one step at a time, as src/runtime/decoder-runner.ts runs it in the browser: the
 * WebGPU-target graph keeps a fixed-capacity cache that the graph updates in place (the same CPU
 * tensors bound as past and present), the portable graph a cache that grows by concatenation.
 */
class Decoder {
  readonly isStatic: boolean;
  private readonly kvType: Ort.Tensor.Type;
  private readonly featureType: Ort.Tensor.Type;
  private types: number[] = [];
  private past: Ort.Tensor[] = [];
  private cache: Ort.Tensor[] = [];
  private capacity = 0;
  length = 0;

  constructor(
    private readonly session: Ort.InferenceSession,
    private readonly dims: Dims,
  ) {
    this.isStatic = session.inputNames.includes(WEBGPU_DECODER_INPUTS.seqlensK);
    this.kvType = inputType(session, DECODER_INPUTS.pastKey(0)) ?? 'float32';
    this.featureType = inputType(session, DECODER_INPUTS.imageFeatures) ?? 'float32';
  }

  /** Empties the cache for a question of at most `tokens` tokens (a static cache is made that large). */
  reset(tokens: number): void {
    this.length = 0;
    this.types = [];
    this.past = [];
    if (this.isStatic && this.capacity < tokens) {
      const { layers, kvHeads, headDim } = this.dims;
      this.cache = Array.from({ length: 2 * layers }, () => zeros(this.kvType, [1, kvHeads, tokens, headDim]));
      this.capacity = tokens;
    }
  }

  async step(ids: ArrayLike<number>, types: ArrayLike<number>, features: Float32Array | undefined): Promise<number> {
    const { layers, kvHeads, headDim, hidden } = this.dims;
    const start = this.length;
    const total = start + ids.length;
    for (let i = 0; i < types.length; i++) this.types.push(types[i]);
    const rows = features ? features.length / hidden : 0;
    const feeds: Record<string, Ort.Tensor> = {
      [DECODER_INPUTS.inputIds]: int64(ids, [1, ids.length]),
      [DECODER_INPUTS.tokenTypeIds]: int64(this.types, [1, total]),
      [DECODER_INPUTS.imageFeatures]: features ? new ort.Tensor('float32', features, [rows, hidden]) : zeros(this.featureType, [0, hidden]),
    };
    if (this.isStatic) {
      if (total > this.capacity) throw new Error(`internal: the cache holds ${this.capacity} tokens, not ${total}`);
      feeds[WEBGPU_DECODER_INPUTS.positionIds] = int64(Array.from({ length: ids.length }, (_, i) => start + i), [1, ids.length]);
      feeds[WEBGPU_DECODER_INPUTS.seqlensK] = new ort.Tensor('int32', Int32Array.of(total - 1), [1]);
      feeds[WEBGPU_DECODER_INPUTS.totalSequenceLength] = new ort.Tensor('int32', Int32Array.of(total), []);
      const fetches: Record<string, Ort.Tensor | null> = { [WEBGPU_DECODER_OUTPUTS.nextToken]: null };
      for (let i = 0; i < layers; i++) {
        feeds[DECODER_INPUTS.pastKey(i)] = fetches[DECODER_OUTPUTS.presentKey(i)] = this.cache[2 * i];
        feeds[DECODER_INPUTS.pastValue(i)] = fetches[DECODER_OUTPUTS.presentValue(i)] = this.cache[2 * i + 1];
      }
      const out = await this.session.run(feeds, fetches);
      this.length = total;
      return Number((out[WEBGPU_DECODER_OUTPUTS.nextToken].data as BigInt64Array)[0]);
    }
    const empty = this.past.length === 0;
    for (let i = 0; i < layers; i++) {
      feeds[DECODER_INPUTS.pastKey(i)] = empty ? zeros(this.kvType, [1, kvHeads, 0, headDim]) : this.past[2 * i];
      feeds[DECODER_INPUTS.pastValue(i)] = empty ? zeros(this.kvType, [1, kvHeads, 0, headDim]) : this.past[2 * i + 1];
    }
    const out = await this.session.run(feeds);
    this.past = [];
    for (let i = 0; i < layers; i++) this.past.push(out[DECODER_OUTPUTS.presentKey(i)], out[DECODER_OUTPUTS.presentValue(i)]);
    this.length = total;
    const logits = out[DECODER_OUTPUTS.logits].data;
    return argmax(logits instanceof Uint16Array ? fromFloat16(logits) : (logits as Float32Array));
  }

  /** Drops the cache's memory between questions. */
  release(): void {
    this.past = [];
    this.types = [];
  }
}

/** A sampled frame as a Picture for the runtime's planner: its RGBA checked and packed to RGB when the pixels are needed. */
function pictureOf(f: SampledFrame, n: number): Picture {
  return {
    width: f.width,
    height: f.height,
    rgb: () => {
      const rgba = f.rgba;
      if (!rgba) throw new InputError(`frame ${n} has no RGBA pixels: the local backend takes frames as RGBA (frameFormat 'rgba'), not JPEG.`);
      if (rgba.length !== f.width * f.height * 4) throw new InputError(`frame ${n} is ${f.width}×${f.height} and needs ${f.width * f.height * 4} RGBA bytes, got ${rgba.length}`);
      const rgb = new Uint8Array(f.width * f.height * 3);
      for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
        rgb[j] = rgba[i];
        rgb[j + 1] = rgba[i + 1];
        rgb[j + 2] = rgba[i + 2];
      }
      return rgb;
    },
  };
}

/** The prompt and items of a question, planned as the browser plans them: a video's frames timed from the clip start, or separate images. */
function planQuestion(q: BackendQuestion, o: PrepareOptions): PlannedInputs {
  for (const [i, f] of q.frames.entries()) {
    if (!Number.isInteger(f.width) || !Number.isInteger(f.height) || f.width <= 0 || f.height <= 0) throw new InputError(`frame ${i + 1} has an invalid size ${f.width}×${f.height}`);
  }
  const pictures = q.frames.map((f, i) => pictureOf(f, i + 1));
  const visual: PlanVisual =
    q.mode === 'video' ? { kind: 'video', frames: q.frames.map((f, i) => ({ picture: pictures[i], timestamp: f.timeS - q.clipStartS })) } : { kind: 'images', images: pictures };
  return planPictures(q.question, undefined, visual, o);
}

/** Opens a converted model folder for the batch tool. */
export async function openLocalBackend(folder: string, opts: LocalBackendOptions = {}): Promise<BatchBackend> {
  const log = opts.log ?? (() => {});
  const manifestText = await readFile(join(folder, 'manifest.json'), 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new Error(`${folder} is not a converted model folder: it has no manifest.json. Convert a checkpoint with \`npm run convert\`, or give the folder it wrote.`);
    throw new Error(`${join(folder, 'manifest.json')} could not be read: ${e.message}`);
  });
  const manifest = parseManifest(manifestText, join(folder, 'manifest.json'));
  const variant = chooseLocalVariant(manifest, opts);
  const listed = new Set(manifest.files.map((f) => f.path));
  const graphFiles = [variant.vision.model, ...variant.vision.externalData, variant.decoder.model, ...variant.decoder.externalData];
  const started = performance.now();
  // The browser checks every file's hash before use; here too, once per open: ~7 s for Molmo2-4B q4's
  // 3.3 GB at the 0.4 GB/s measured on a loaded 2-core machine, little beside loading the weights and a
  // batch's questions. verify: false checks the sizes only.
  await checkFiles(folder, manifest, [...MODEL_TEXT_FILES.filter((p) => listed.has(p)), ...graphFiles], opts.verify !== false);
  if (opts.verify !== false) log(`checked the files of ${manifest.name} (${variant.dtype}, ${variant.target}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const texts = new Map<string, string>();
  for (const p of MODEL_TEXT_FILES) if (listed.has(p)) texts.set(p, await readFile(join(folder, p), 'utf8'));
  const { config, settings, tokenizer, chatTemplate } = readModelTexts(manifest.name, texts);

  const sessionOptions: Ort.InferenceSession.SessionOptions = { executionProviders: opts.executionProviders ?? ['cpu'] };
  const level = opts.accuracyLevel === 'as-converted' ? undefined : (opts.accuracyLevel ?? 0);
  const t0 = performance.now();
  const create = async (graph: GraphFiles, what: string) => {
    let copy: string | undefined;
    if (level !== undefined) {
      copy = await graphCopyAt(folder, graph, level).catch((e: Error) => {
        log(`could not write the ${what} graph at accuracy_level ${level} into ${folder} (${e.message}); running it as converted`);
        return undefined;
      });
    }
    try {
      return await ort.InferenceSession.create(copy ?? join(folder, graph.model), sessionOptions);
    } catch (e) {
      throw new Error(`onnxruntime-node could not load the ${what} graph of ${manifest.name} (${variant.dtype}, ${variant.target} target): ${(e as Error).message}`);
    } finally {
      // The session holds the graph now.
      if (copy) await rm(copy, { force: true });
    }
  };
  const vision = await create(variant.vision, 'vision');
  const decoderSession = await create(variant.decoder, 'decoder').catch(async (e: unknown) => {
    await vision.release();
    throw e;
  });
  const dims: Dims = { layers: config.text.numLayers, kvHeads: config.text.numKvHeads, headDim: config.text.headDim, hidden: config.text.hiddenSize };
  const decoder = new Decoder(decoderSession, dims);
  log(
    `loaded ${manifest.name} (${variant.dtype}, ${variant.target} target, ${decoder.isStatic ? 'static' : 'growing'} KV cache${hasFloat16Activations(variant.dtype) ? ', fp16 activations: slow on most CPUs' : ''}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const cropsPerRun = opts.cropsPerVisionRun ?? DEFAULT_CROPS_PER_RUN;
  const patchesPerCrop = (config.vit.imageSize[0] / config.vit.patchSize) ** 2;

  /** image_features [rows, hidden] of every item, in prompt order; the vision encoder in runs of crops, as the browser runs it. */
  async function features(p: PlannedInputs, signal: AbortSignal | undefined, t: { preprocessMs: number; visionMs: number }): Promise<Float32Array> {
    const parts: Float32Array[] = [];
    for (const members of visionBatches(p.items, cropsPerRun)) {
      signal?.throwIfAborted();
      let at = performance.now();
      const run = members.map((i) => p.items[i]);
      const crops = run.reduce((n, it) => n + it.crops, 0);
      const pixels = allPixels(run);
      const pooled = runPooledIdx(p.items, members, patchesPerCrop);
      t.preprocessMs += performance.now() - at;
      at = performance.now();
      const out = await vision.run({
        [VISION_INPUTS.pixelValues]: new ort.Tensor('float32', pixels, [crops, patchesPerCrop, pixels.length / crops / patchesPerCrop]),
        [VISION_INPUTS.pooledIdx]: int64(pooled, [pooled.length / p.poolSize, p.poolSize]),
      });
      parts.push(out[VISION_OUTPUTS.imageFeatures].data as Float32Array);
      t.visionMs += performance.now() - at;
    }
    return concatFloat32(parts);
  }

  async function answer(q: BackendQuestion): Promise<BackendAnswer> {
    q.signal?.throwIfAborted();
    if (!Number.isInteger(q.maxNewTokens) || q.maxNewTokens < 1) throw new Error(`maxNewTokens must be a positive integer, got ${q.maxNewTokens}`);
    const t = { preprocessMs: 0, visionMs: 0, prefillMs: 0, decodeMs: 0 };
    let at = performance.now();
    const planned = planQuestion(q, { config, settings, tokenizer, chatTemplate });
    const promptTokens = planned.prompt.inputIds.length;
    const modelMax = config.text.maxPositionEmbeddings;
    if (promptTokens >= modelMax) throw new Error(`the prompt has ${promptTokens} tokens, more than the model's ${modelMax}-token context; sample fewer frames`);
    t.preprocessMs += performance.now() - at;
    const imageFeatures = await features(planned, q.signal, t);
    q.signal?.throwIfAborted();

    // Room for the prompt and the answer, within the model's context (the browser stops there too).
    const capacity = Math.min(promptTokens + q.maxNewTokens, modelMax);
    decoder.reset(capacity);
    const tokens: number[] = [];
    try {
      at = performance.now();
      let next = await decoder.step(planned.prompt.inputIds, planned.prompt.tokenTypeIds, imageFeatures);
      t.prefillMs = performance.now() - at;
      at = performance.now();
      // Greedy until EOS, the token limit or a full context, as src/runtime/generate.ts decodes.
      for (;;) {
        tokens.push(next);
        if (next === config.tokens.eos || tokens.length >= q.maxNewTokens || decoder.length >= capacity) break;
        q.signal?.throwIfAborted();
        next = await decoder.step([next], [0], undefined);
      }
      t.decodeMs = performance.now() - at;
    } finally {
      decoder.release();
    }
    const round = (ms: number) => Math.round(ms * 10) / 10;
    return {
      text: tokenizer.decode(tokens),
      timingMs: { preprocessMs: round(t.preprocessMs), visionMs: round(t.visionMs), prefillMs: round(t.prefillMs), decodeMs: round(t.decodeMs), promptTokens, tokens: tokens.length },
    };
  }

  // One question at a time (concurrency 1): a second call waits for the first.
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  return {
    kind: 'local',
    model: { id: manifest.name, dtype: variant.dtype },
    frameFormat: 'rgba',
    concurrency: 1,
    ask(q) {
      if (closed) return Promise.reject(new Error('the local backend is closed'));
      const run = queue.then(() => answer(q));
      queue = run.catch(() => {});
      return run;
    },
    async close() {
      closed = true;
      await queue;
      await vision.release();
      await decoderSession.release();
    },
  };
}
