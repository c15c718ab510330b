// Loads a converted model: source → manifest → variant → files (cache / download) → sessions and KV
// cache → warm-up → GPU preprocessor. Returns a loaded-model handle whose one `dispose()` releases
// everything it holds; a failed or cancelled load releases what it made and keeps nothing.
import type { ChatTemplate } from '../molmo2/chat-template.ts';
import type { Molmo2Config, ProcessorSettings } from '../molmo2/config.ts';
import { modelCard } from '../molmo2/family.ts';
import { hasFloat16Activations, type Manifest, type ManifestFile, type ModelVariant } from '../molmo2/manifest.ts';
import { planVideoFrame } from '../molmo2/image.ts';
import { VISION_OUTPUTS } from '../molmo2/onnx/io.ts';
import type { Molmo2Tokenizer } from '../molmo2/tokenizer.ts';
import { errorCode, errorMessage, WorkerError } from '../../workers/worker-error.ts';
import type { Capabilities, GpuFitCheck, LoadedModel, LoadOptions, LoadProgress, ModelSource } from './api-types.ts';
import type { ProbeResult } from './capabilities.ts';
import { createDecoderRunner, decoderOutputLocations, type DecoderRunner } from './decoder-runner.ts';
import { chooseVariant, dtypeOrder, gpuNeed, gpuShortfall, planContext, probeTarget, runsOn, type ContextPlan } from './device-plan.ts';
import { probeGpuFit } from './gpu-fit.ts';
import { fetchModelFiles } from './download.ts';
import { allocChecked, GpuMemoryError, isMemoryError, memoryErrorMessage } from './gpu-faults.ts';
import { createGpuPreprocessor } from './gpu-preprocess-inputs.ts';
import type { GpuPreprocessor } from './gpu-preprocess.ts';
import { askLimits, type AskLimits, type GpuBufferLimits } from './limits.ts';
import { probeFreeBytes } from './memory-probe.ts';
import { parseManifest } from './manifest-check.ts';
import { MODEL_TEXT_FILES, readModelTexts } from './model-texts.ts';
import { notify, type Callback } from './notify.ts';
import { manifestId, type ModelCache } from './opfs-cache.ts';
import { ortBuild, ortDevice, setupOrt, type ort } from './ort.ts';
import { LoadProgressTracker } from './progress.ts';
import { createGraphSession } from './sessions.ts';
import { misplacedNodes } from './placement.ts';
import { openSource, urlReader, type SourceReader } from './sources.ts';
import { DEFAULT_FEATURE_CACHE_BYTES, FeatureCache, runVision } from './vision-features.ts';

/** Files besides the graphs that the runtime reads (the others in the folder are not downloaded). */
const PROGRESS_INTERVAL_MS = 100;

/** A model on the GPU, ready to answer. */
export interface ModelHandle {
  info: LoadedModel;
  config: Molmo2Config;
  settings: ProcessorSettings;
  tokenizer: Molmo2Tokenizer;
  /** The checkpoint's chat template, compiled and proved at load. */
  chatTemplate: ChatTemplate;
  vision: ort.InferenceSession;
  decoder: ort.InferenceSession;
  runner: DecoderRunner;
  device: GPUDevice;
  limits: AskLimits;
  features: FeatureCache;
  /** Feature-cache keys are scoped to the model and its dtype/target. */
  featureScope: string;
  /** What the decoder cache's image tokens show (prefix reuse). */
  cacheState: { visualId: string | undefined };
  /** Empties the decoder cache: the next question is prefilled from scratch. */
  forgetPrefix(): void;
  /** Pixel values on onnxruntime's device (undefined: the CPU path). */
  gpuPre?: GpuPreprocessor;
  /** Crops per vision run (the limit, or less when LoadOptions asks). */
  cropsPerRun: number;
  /** Releases everything above that lives on the GPU. */
  dispose(): Promise<void>;
}

export interface LoadContext {
  probe: ProbeResult;
  /** The browser cache, when it exists (undefined: none offered). */
  openCache: () => Promise<ModelCache | undefined>;
  signal: AbortSignal;
  onProgress?: Callback<LoadProgress>;
  /** Told of onnxruntime's device as soon as the sessions exist (device-loss watching). */
  onDevice?: (device: GPUDevice) => void;
}

export const geometryOf = (c: Molmo2Config) => ({ patchSize: c.vit.patchSize, cropSize: c.vit.imageSize[0] });

/** What was made on the GPU so far, released newest first by one call (at most once). */
class Holdings {
  private readonly releases: (() => unknown)[] = [];
  add(release: () => unknown): void {
    this.releases.push(release);
  }
  /** Releases everything, even after one release fails (that failure is thrown at the end). */
  async release(): Promise<void> {
    let failure: unknown;
    for (const release of this.releases.splice(0).reverse()) {
      try {
        await release();
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) throw failure;
  }
}

export async function loadModel(source: ModelSource, options: LoadOptions, ctx: LoadContext): Promise<ModelHandle> {
  const started = performance.now();
  const { signal } = ctx;
  const progress = new LoadProgressTracker();
  let lastEmit = 0;
  const emit = (force = false) => {
    const now = performance.now();
    if (!force && now - lastEmit < PROGRESS_INTERVAL_MS) return;
    lastEmit = now;
    notify(ctx.onProgress, progress.snapshot());
  };
  progress.stage = 'manifest';
  progress.message = 'Reading the model manifest';
  emit(true);

  const caps = ctx.probe.capabilities;
  if (!caps.webgpu || !ctx.probe.adapter) throw new WorkerError('unsupported', caps.message ?? 'WebGPU is not available');
  const useCache = options.cache !== false;
  const cache = useCache ? await ctx.openCache() : undefined;

  const { reader, manifest, id, offline, label } = await resolveSource(source, cache);
  const choice = chooseVariant(manifest, caps, { dtype: options.dtype, target: options.target, maxContext: options.maxContext });
  if (!choice.variant || !choice.maxContext) throw new WorkerError('unsupported', choice.error ?? 'no variant of this model can run here');
  const variant = choice.variant;
  const warnings = [...choice.warnings];
  const fit = await checkGpuFit(manifest, variant, caps, options.maxContext);
  if (offline) warnings.push('The model source could not be reached; the cached copy was used.');

  const files = filesFor(manifest, variant);
  for (const f of files) progress.addFile(f.path, f.bytes);
  progress.stage = 'download';
  progress.message = `Getting ${manifest.name} (${variant.dtype})`;
  emit(true);
  const t0 = performance.now();
  const fetched = await fetchModelFiles({ reader, files, cache: reader?.local ? undefined : cache, progress, onUpdate: () => emit(), signal });
  const downloadMs = performance.now() - t0;
  if (fetched.quotaExceeded) warnings.push('The browser storage is full, so the model is kept in memory only and will be downloaded again next time. Free space by deleting cached models.');
  if (useCache && !cache && !reader?.local) warnings.push('This browser offers no storage for caching (OPFS), so the model will be downloaded again next time.');
  if (cache && fetched.cached.length > 0) {
    await cache.saveRecord({ id, name: manifest.name, source: label, manifest, paths: fetched.cached }).catch(() => {
      warnings.push('Could not record the cached model; it may be downloaded again next time.');
    });
  }

  progress.stage = 'preparing';
  progress.message = 'Preparing the GPU (creating sessions, compiling shaders)';
  emit(true);
  signal.throwIfAborted();
  const held = new Holdings();
  try {
    const t1 = performance.now();
    let parts;
    try {
      parts = await prepare(manifest, variant, fetched.files, options, ctx.probe, held);
    } catch (e) {
      const message = errorMessage(e);
      // No KV cache exists yet: cite a context only when one was asked for (the estimate made before
      // the download is not what the GPU was asked to hold).
      throw errorCode(e) !== 'out-of-memory' && isMemoryError(message) ? new GpuMemoryError(memoryErrorMessage('load', message, options.maxContext)) : e;
    }
    fetched.files.clear();
    ctx.onDevice?.(parts.device);
    for (const p of parts.placement) {
      const slow = misplacedNodes(p);
      if (slow.length) warnings.push(`${slow.length} compute node${slow.length === 1 ? '' : 's'} of ${p.graph} run on the CPU (${[...new Set(slow.map((n) => n.op))].join(', ')}): this browser's WebGPU lacks them, so answers will be slow.`);
    }
    // A cancel during preparation or warm-up: release what was made, keep no half-loaded model.
    signal.throwIfAborted();
    const prepareMs = performance.now() - t1;
    let warmUpMs = 0;
    if (options.warmUp !== false) {
      progress.message = 'Warming up (first run compiles the GPU shaders)';
      emit(true);
      const t2 = performance.now();
      try {
        await warmUp(parts);
      } catch (e) {
        throw explainRunError(e, variant);
      }
      warmUpMs = performance.now() - t2;
      signal.throwIfAborted();
    }
    const asked = options.maxCropsPerVisionRun;
    if (asked !== undefined && !(Number.isInteger(asked) && asked >= 1)) throw new WorkerError('bad-input', `maxCropsPerVisionRun must be a positive integer, got ${asked}`);
    const cropsPerRun = Math.min(parts.limits.maxCropsPerVisionRun, asked ?? Infinity);
    const gpuPre = await gpuPreprocessor(parts, options.gpuPreprocess ?? 'auto', warnings);
    if (gpuPre) held.add(() => gpuPre.dispose());
    const features = new FeatureCache(parts.memoryPlan.featureCacheBytes);
    held.add(() => features.clear());
    const info: LoadedModel = {
      id,
      name: manifest.name,
      dtype: variant.dtype,
      target: variant.target,
      precision: variant.precision,
      randomWeights: manifest.architecture.randomWeights,
      architecture: manifest.architecture,
      from: fetched.fromSource === 0 ? 'cache' : fetched.fromCache === 0 ? 'source' : 'mixed',
      storage: reader?.local ? 'none' : fetched.cached.length === files.length ? 'opfs' : 'memory',
      maxContext: parts.runner.maxContext,
      limits: parts.limits,
      kvCache: parts.runner.kind,
      timings: { totalMs: performance.now() - started, downloadMs, prepareMs, warmUpMs },
      warnings,
      placement: parts.placement,
      memoryPlan: parts.memoryPlan,
      preprocess: gpuPre ? 'gpu' : 'cpu',
      ortBuild: ortBuild(),
      card: modelCard(manifest),
      gpuFit: fit,
    };
    const { placement: _placement, memoryPlan: _memoryPlan, ...state } = parts;
    progress.stage = 'ready';
    progress.message = `${manifest.name} is ready`;
    emit(true);
    const cacheState = { visualId: undefined as string | undefined };
    return {
      ...state,
      info,
      features,
      featureScope: `${id}|${variant.dtype}|${variant.target}`,
      cacheState,
      forgetPrefix: () => {
        state.runner.reset();
        cacheState.visualId = undefined;
      },
      gpuPre,
      cropsPerRun,
      dispose: () => held.release(),
    };
  } catch (e) {
    await held.release().catch(() => {});
    throw e;
  }
}

/** Reader and manifest of a source; a URL that cannot be reached falls back to its cached manifest. */
async function resolveSource(
  source: ModelSource,
  cache: ModelCache | undefined,
): Promise<{ reader?: SourceReader; manifest: Manifest; id: string; offline: boolean; label: string }> {
  if (!source || typeof source !== 'object') throw new WorkerError('bad-input', 'no model source was given');
  if (source.kind === 'cached') {
    const rec = await cache?.record(source.id);
    if (!rec) throw new WorkerError('model-file', 'that model is no longer in the browser cache');
    // Files missing or corrupt in the cache are fetched again from where they came from.
    const reader = /^https?:/.test(rec.source) ? urlReader(rec.source) : undefined;
    return { reader, manifest: rec.manifest, id: rec.id, offline: false, label: rec.source };
  }
  const reader = await openSource(source);
  let text: string;
  try {
    text = await reader.readText('manifest.json');
  } catch (e) {
    const rec = !reader.local && errorCode(e) === 'network' ? await cache?.recordForSource(reader.label) : undefined;
    if (!rec) throw e;
    return { reader, manifest: rec.manifest, id: rec.id, offline: true, label: reader.label };
  }
  return { reader, manifest: parseManifest(text, `${reader.label} manifest.json`), id: await manifestId(text), offline: false, label: reader.label };
}

function filesFor(manifest: Manifest, v: ModelVariant): ManifestFile[] {
  const wanted = new Set([...MODEL_TEXT_FILES, v.vision.model, ...v.vision.externalData, v.decoder.model, ...v.decoder.externalData]);
  return manifest.files.filter((f) => wanted.has(f.path));
}

/**
 * Before the download: the GPU allocates what the variant needs (weights, the smallest cache and a
 * reserve), or the load is refused with the numbers and the model's dtypes that would fit.
 */
async function checkGpuFit(manifest: Manifest, variant: ModelVariant, caps: Capabilities, askedContext?: number): Promise<GpuFitCheck> {
  const need = gpuNeed(manifest, variant, askedContext);
  const probed = await probeGpuFit(need.totalBytes);
  const check: GpuFitCheck = { needBytes: need.totalBytes, ...probed };
  if (probed.allocatableBytes === undefined) return check;
  const runnable = new Set(dtypeOrder(caps));
  const fitting = manifest.variants
    .filter((v) => v !== variant && runnable.has(v.dtype) && runsOn(caps, v))
    .filter((v) => gpuNeed(manifest, v, askedContext).totalBytes <= probed.allocatableBytes!)
    .map((v) => v.dtype);
  const refusal = gpuShortfall(manifest.name, variant.dtype, need, probed.allocatableBytes, [...new Set(fitting)]);
  if (refusal) throw new WorkerError('out-of-memory', refusal);
  return check;
}

/** The small files (configs, tokenizer, chat template) as text; the graphs and weights stay Blobs. */
async function textFiles(files: Map<string, Blob>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const path of MODEL_TEXT_FILES) {
    const file = files.get(path);
    if (file) out.set(path, await file.text());
  }
  return out;
}

/** Config, tokenizer, both sessions and the KV cache; each GPU part is added to `held` as it is made. */
async function prepare(manifest: Manifest, variant: ModelVariant, fetched: Map<string, Blob>, options: LoadOptions, probe: ProbeResult, held: Holdings) {
  const { config, settings, tokenizer, chatTemplate } = readModelTexts(manifest.name, await textFiles(fetched));
  await setupOrt(probe.adapter!);
  const vision = await createGraphSession(variant.vision, fetched, { preferredOutputLocation: { [VISION_OUTPUTS.imageFeatures]: 'gpu-buffer' } });
  held.add(() => vision.session.release());
  const decoder = await createGraphSession(variant.decoder, fetched, { preferredOutputLocation: decoderOutputLocations(config.text.numLayers) });
  held.add(() => decoder.session.release());
  // onnxruntime keeps small shape computations on the CPU on purpose; compute there is reported.
  const placement = [vision.placement, decoder.placement];
  const device = await ortDevice();
  const actBytes = hasFloat16Activations(variant.dtype) ? 2 : 4;
  const memoryPlan = await planMemory(config, settings, actBytes, device, probe.capabilities, options);
  const context = memoryPlan.maxContext;
  const made = await allocChecked(device, () =>
    createDecoderRunner(
      decoder.session,
      { layers: config.text.numLayers, kvHeads: config.text.numKvHeads, headDim: config.text.headDim, hidden: config.text.hiddenSize },
      context,
      device,
    ),
  );
  const runner = made.value;
  held.add(() => runner.dispose());
  // The KV cache did not fit: WebGPU reports it through the error scope, not by throwing.
  if (made.error) throw new GpuMemoryError(memoryErrorMessage('load', made.error, context));
  const limits = askLimits(config, settings, runner.maxContext, actBytes, probe.capabilities, variant.decoder.prefillChunk);
  return { config, settings, tokenizer, chatTemplate, vision: vision.session, decoder: decoder.session, runner, device, limits, placement, memoryPlan };
}

/**
 * The KV-cache size: as asked, else from the GPU memory measured free once the weights are on it
 * (the probe's buffers are released before the cache is made). The vision-feature cache is sized
 * with it: the features of the reference's most frames (384 video frames: 318 MB for Molmo2-4B),
 * at least DEFAULT_FEATURE_CACHE_BYTES and at most an eighth of the memory measured free.
 */
async function planMemory(config: Molmo2Config, settings: ProcessorSettings, actBytes: number, device: GPUDevice, gpu: GpuBufferLimits, options: LoadOptions): Promise<ContextPlan & { featureCacheBytes: number }> {
  const kvBytesPerToken = config.text.numLayers * 2 * config.text.numKvHeads * config.text.headDim * actBytes;
  const modelMax = config.text.maxPositionEmbeddings;
  const geometry = { patchSize: config.vit.patchSize, cropSize: config.vit.imageSize[0] };
  const framesBytes = settings.maxFrames * planVideoFrame(settings, geometry).patchTokens * config.text.hiddenSize * 4;
  const wanted = options.featureCacheBytes ?? Math.max(DEFAULT_FEATURE_CACHE_BYTES, framesBytes);
  const maxBindingBytes = gpu.maxStorageBufferBindingSize;
  const freeBytes = options.maxContext === undefined ? await probeFreeBytes(device, probeTarget(kvBytesPerToken, modelMax, wanted, maxBindingBytes)) : 0;
  const featureCacheBytes = options.featureCacheBytes ?? (freeBytes > 0 ? Math.min(wanted, Math.max(DEFAULT_FEATURE_CACHE_BYTES, Math.floor(freeBytes / 8))) : DEFAULT_FEATURE_CACHE_BYTES);
  return { ...planContext({ kvBytesPerToken, freeBytes, featureCacheBytes, maxBindingBytes, modelMax, asked: options.maxContext }), featureCacheBytes };
}

/** One tiny run of each graph so that shader compilation happens now, not at the first question. */
async function warmUp(m: Pick<ModelHandle, 'config' | 'vision' | 'runner'>): Promise<void> {
  const c = m.config;
  const patches = (c.vit.imageSize[0] / c.vit.patchSize) ** 2;
  const features = await runVision(m.vision, new Float32Array(patches * c.vit.patchSize * c.vit.patchSize * 3), 1, [0, 1, 2, 3], 4);
  if (features.location === 'gpu-buffer') features.dispose();
  m.runner.reset();
  await m.runner.step([c.tokens.bos], [0], undefined, false);
  m.runner.reset();
}

/** A clearer message for the run-time failures a user can act on. */
function explainRunError(e: unknown, v: ModelVariant): Error {
  if (!/requires f16/.test(errorMessage(e))) return e instanceof Error ? e : new Error(errorMessage(e));
  return new WorkerError(
    'unsupported',
    `The ${v.dtype}/${v.target} graphs use fp16 tensors, which this GPU cannot run (no shader-f16). ` +
      'Load another variant (e.g. q4 for the WebGPU target, or fp32), or convert the model again with --dtype q4.',
  );
}

/**
 * The GPU preprocessor on onnxruntime's device, made after the sessions (it needs that device).
 * 'auto' leaves it off on software adapters, where the CPU path is faster; 'on' only needs the self-check.
 */
async function gpuPreprocessor(m: Pick<ModelHandle, 'device' | 'settings' | 'config'>, mode: 'auto' | 'on' | 'off', warnings: string[]): Promise<GpuPreprocessor | undefined> {
  if (mode === 'off') return undefined;
  if (mode !== 'auto' && mode !== 'on') throw new WorkerError('bad-input', `gpuPreprocess must be 'auto', 'on' or 'off', got ${JSON.stringify(mode)}`);
  const made = await createGpuPreprocessor(m.device, m.settings, geometryOf(m.config), { allowFallbackAdapter: mode === 'on' });
  if (!made && mode === 'on') warnings.push('GPU preprocessing was asked for, but it failed its check on this GPU; pixel values are made on the CPU.');
  return made?.pre;
}
