// The inference worker's implementation: capabilities, model loading (sources, cache, sessions),
// answering questions with streamed events, cancel and unload. One model and one request at a time.
import { parseMolmo2Config, parseProcessorSettings, type Molmo2Config, type ProcessorSettings } from '../molmo2/config.ts';
import type { Manifest, ManifestFile, ModelVariant } from '../molmo2/manifest.ts';
import { VISION_OUTPUTS } from '../molmo2/onnx/io.ts';
import { Molmo2Tokenizer } from '../molmo2/tokenizer.ts';
import type { AskEvent, AskRequest, CachedModel, Capabilities, LoadedModel, LoadOptions, LoadProgress, ModelSource, StorageInfo } from './api-types.ts';
import { probeCapabilities, type ProbeOptions } from './capabilities.ts';
import { createDecoderRunner, decoderOutputLocations, type DecoderRunner } from './decoder-runner.ts';
import { chooseVariant } from './device-plan.ts';
import { fetchModelFiles } from './download.ts';
import { allocChecked, deviceLoss, GpuLostError, gpuLostMessage, isMemoryError, memoryErrorMessage } from './gpu-faults.ts';
import { createGpuPreprocessor, gpuItemPixels } from './gpu-preprocess-inputs.ts';
import type { GpuPreprocessor } from './gpu-preprocess.ts';
import { generate, type DoneEvent } from './generate.ts';
import { InputError, planInputs, shapeOf } from './inputs.ts';
import { askLimits, checkAskLimits, type AskLimits } from './limits.ts';
import { parseManifest } from './manifest-check.ts';
import { manifestId, ModelCache } from './opfs-cache.ts';
import { ortDevice, setupOrt, type ort } from './ort.ts';
import { LoadProgressTracker } from './progress.ts';
import { createGraphSession } from './sessions.ts';
import { openSource, SourceError, urlReader, type SourceReader } from './sources.ts';
import { DEFAULT_FEATURE_CACHE_BYTES, FeatureCache, runVision } from './vision-features.ts';

export const DEFAULT_MAX_NEW_TOKENS = 2048;
/** Files besides the graphs that the runtime reads (the others in the folder are not downloaded). */
const RUNTIME_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json', 'processor_config.json', 'video_preprocessor_config.json'];
const PROGRESS_INTERVAL_MS = 100;

interface Loaded {
  info: LoadedModel;
  config: Molmo2Config;
  settings: ProcessorSettings;
  tokenizer: Molmo2Tokenizer;
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
  /** Pixel values on onnxruntime's device (undefined: the CPU path). */
  gpuPre?: GpuPreprocessor;
  /** Crops per vision run (the limit, or less when LoadOptions asks). */
  cropsPerRun: number;
}

const geometryOf = (c: Molmo2Config) => ({ patchSize: c.vit.patchSize, cropSize: c.vit.imageSize[0] });

export class BusyError extends Error {}

/** A request refused by the limits before any work (the message gives the numbers and what to do). */
export class LimitError extends Error {}

/** What the benchmark page measures: the decode loop against bare session.run calls on the same inputs. */
export interface DecodeOverhead {
  steps: number;
  /** Milliseconds per generated token of the decode loop (generate → runner → session.run → event). */
  loopMsPerToken: number;
  /** Milliseconds per back-to-back session.run with the loop's last step's inputs and outputs. */
  bareMsPerToken: number;
  ratio: number;
  /** session.run times of the loop's decode steps (both rounds, in order) and of the bare runs. */
  loopRunMs: number[];
  bareRunMs: number[];
}

/** A clearer message for the run-time failures a user can act on. */
function explainRunError(e: unknown, v: ModelVariant): Error {
  const message = String((e as Error)?.message ?? e);
  if (/requires f16/.test(message)) {
    return new Error(
      `The ${v.dtype}/${v.target} graphs use fp16 tensors, which this GPU cannot run (no shader-f16). ` +
        'Load another variant (e.g. q4 for the WebGPU target, or fp32), or convert the model again with --dtype q4.',
    );
  }
  return e instanceof Error ? e : new Error(message);
}

type Callback<T> = (value: T) => unknown;

/** Calls a page callback without waiting for it (a proxied callback answers asynchronously). */
function notify<T>(cb: Callback<T> | undefined, value: T): void {
  if (!cb) return;
  try {
    void Promise.resolve(cb(value)).catch(() => {});
  } catch {
    // The page went away; nothing to tell.
  }
}

function jsonOf(files: Map<string, Uint8Array>, path: string): Record<string, unknown> | undefined {
  const bytes = files.get(path);
  if (!bytes) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

export class InferenceEngine {
  private probe?: Promise<Awaited<ReturnType<typeof probeCapabilities>>>;
  private loaded?: Loaded;
  private busy?: 'loading' | 'asking';
  private cancelRequested = false;
  private loadAbort?: AbortController;
  private cachePromise?: Promise<ModelCache | undefined>;
  /**
   * Why the loaded model's device was lost. Sticky: onnxruntime's wasm state does not survive it (a new
   * session then fails with "memory access out of bounds"), so only a fresh worker can load again.
   */
  private gpuLost?: string;
  private watched = new WeakSet<GPUDevice>();

  constructor(private readonly probeOptions: ProbeOptions = {}) {}

  private cache(): Promise<ModelCache | undefined> {
    this.cachePromise ??= ModelCache.open();
    return this.cachePromise;
  }

  async capabilities(): Promise<Capabilities> {
    this.probe ??= probeCapabilities(this.probeOptions);
    const { capabilities } = await this.probe;
    return { ...capabilities, storage: await this.storageEstimate() };
  }

  private async storageEstimate(): Promise<StorageInfo | undefined> {
    try {
      const e = await navigator.storage.estimate();
      return { usage: e.usage ?? 0, quota: e.quota ?? 0 };
    } catch {
      return undefined;
    }
  }

  async storageInfo(): Promise<StorageInfo> {
    return (await this.storageEstimate()) ?? { usage: 0, quota: 0 };
  }

  async listCachedModels(): Promise<CachedModel[]> {
    return (await (await this.cache())?.list()) ?? [];
  }

  async deleteCachedModel(id: string): Promise<boolean> {
    return (await (await this.cache())?.delete(id)) ?? false;
  }

  /** The loaded model, if any. */
  async current(): Promise<LoadedModel | undefined> {
    return this.loaded?.info;
  }

  async loadModel(source: ModelSource, options: LoadOptions = {}, onProgress?: Callback<LoadProgress>): Promise<LoadedModel> {
    if (this.busy) throw new BusyError(this.busy === 'loading' ? 'a model is already loading' : 'the model is answering; cancel it first');
    this.busy = 'loading';
    this.cancelRequested = false;
    const abort = new AbortController();
    this.loadAbort = abort;
    try {
      await this.unloadNow();
      return await this.load(source, options, onProgress, abort.signal);
    } finally {
      this.busy = undefined;
      this.loadAbort = undefined;
    }
  }

  private async load(source: ModelSource, options: LoadOptions, onProgress: Callback<LoadProgress> | undefined, signal: AbortSignal): Promise<LoadedModel> {
    const started = performance.now();
    const progress = new LoadProgressTracker();
    let lastEmit = 0;
    const emit = (force = false) => {
      const now = performance.now();
      if (!force && now - lastEmit < PROGRESS_INTERVAL_MS) return;
      lastEmit = now;
      notify(onProgress, progress.snapshot());
    };
    progress.stage = 'manifest';
    progress.message = 'Reading the model manifest';
    emit(true);

    if (this.gpuLost) throw new GpuLostError(`${gpuLostMessage(this.gpuLost)} This worker cannot use the GPU again; start a new one (the app does so itself).`);
    const probe = await (this.probe ??= probeCapabilities(this.probeOptions));
    const caps = probe.capabilities;
    if (!caps.webgpu || !probe.adapter) throw new Error(caps.message ?? 'WebGPU is not available');
    const useCache = options.cache !== false;
    const cache = useCache ? await this.cache() : undefined;

    const { reader, manifest, id, offline, label } = await this.resolveSource(source, cache);
    const choice = chooseVariant(manifest, caps, { dtype: options.dtype, target: options.target, maxContext: options.maxContext });
    if (!choice.variant || !choice.maxContext) throw new Error(choice.error);
    const variant = choice.variant;
    const maxContext = choice.maxContext;
    const warnings = [...choice.warnings];
    if (offline) warnings.push('The model source could not be reached; the cached copy was used.');

    const files = this.filesFor(manifest, variant);
    for (const f of files) progress.addFile(f.path, f.bytes);
    progress.stage = 'download';
    progress.message = `Getting ${manifest.name} (${variant.dtype})`;
    emit(true);
    const t0 = performance.now();
    const fetched = await fetchModelFiles({
      reader,
      files,
      cache: reader?.local ? undefined : cache,
      progress,
      onUpdate: () => emit(),
      signal,
    });
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
    const t1 = performance.now();
    let loaded;
    try {
      loaded = await this.prepare(manifest, variant, fetched.bytes, maxContext, probe.adapter, caps);
    } catch (e) {
      const message = String((e as Error)?.message ?? e);
      throw isMemoryError(message) && !message.startsWith('The GPU ') ? new Error(memoryErrorMessage('load', message, maxContext)) : e;
    }
    fetched.bytes.clear();
    this.watchDevice(loaded.device);
    // A cancel during preparation or warm-up: release what was made, keep no half-loaded model.
    const dropIfCancelled = async () => {
      if (!signal.aborted) return;
      loaded.runner.dispose();
      await loaded.vision.release();
      await loaded.decoder.release();
      signal.throwIfAborted();
    };
    await dropIfCancelled();
    warnings.push(...loaded.warnings);
    const prepareMs = performance.now() - t1;
    let warmUpMs = 0;
    if (options.warmUp !== false) {
      progress.message = 'Warming up (first run compiles the GPU shaders)';
      emit(true);
      const t2 = performance.now();
      try {
        await this.warmUp(loaded);
      } catch (e) {
        loaded.runner.dispose();
        await loaded.vision.release();
        await loaded.decoder.release();
        throw explainRunError(e, variant);
      }
      warmUpMs = performance.now() - t2;
      await dropIfCancelled();
    }
    const asked = options.maxCropsPerVisionRun;
    if (asked !== undefined && !(Number.isInteger(asked) && asked >= 1)) throw new Error(`maxCropsPerVisionRun must be a positive integer, got ${asked}`);
    const cropsPerRun = Math.min(loaded.limits.maxCropsPerVisionRun, asked ?? Infinity);
    const gpuPre = await this.gpuPreprocessor(loaded, options.gpuPreprocess ?? 'auto', warnings);
    const from = fetched.fromSource === 0 ? 'cache' : fetched.fromCache === 0 ? 'source' : 'mixed';
    const info: LoadedModel = {
      id,
      name: manifest.name,
      dtype: variant.dtype,
      target: variant.target,
      randomWeights: manifest.architecture.randomWeights,
      architecture: manifest.architecture,
      from,
      storage: reader?.local ? 'none' : fetched.cached.length === files.length ? 'opfs' : 'memory',
      maxContext: loaded.runner.maxContext,
      limits: loaded.limits,
      kvCache: loaded.runner.kind,
      timings: { totalMs: performance.now() - started, downloadMs, prepareMs, warmUpMs },
      warnings,
      cpuNodes: loaded.cpuNodes,
      preprocess: gpuPre ? 'gpu' : 'cpu',
    };
    const { warnings: _w, cpuNodes: _c, ...state } = loaded;
    const features = new FeatureCache(options.featureCacheBytes ?? DEFAULT_FEATURE_CACHE_BYTES);
    this.loaded = { ...state, info, features, featureScope: `${id}|${variant.dtype}|${variant.target}`, cacheState: { visualId: undefined }, gpuPre, cropsPerRun };
    progress.stage = 'ready';
    progress.message = `${manifest.name} is ready`;
    emit(true);
    return info;
  }

  /**
   * The GPU preprocessor on onnxruntime's device, made after the sessions (it needs that device).
   * 'auto' leaves it off on software adapters, where the CPU path is faster; 'on' only needs the self-check.
   */
  private async gpuPreprocessor(m: Pick<Loaded, 'device' | 'settings' | 'config'>, mode: 'auto' | 'on' | 'off', warnings: string[]): Promise<GpuPreprocessor | undefined> {
    if (mode === 'off') return undefined;
    if (mode !== 'auto' && mode !== 'on') throw new Error(`gpuPreprocess must be 'auto', 'on' or 'off', got ${JSON.stringify(mode)}`);
    const made = await createGpuPreprocessor(m.device, m.settings, geometryOf(m.config), { allowFallbackAdapter: mode === 'on' });
    if (!made && mode === 'on') warnings.push('GPU preprocessing was asked for, but it failed its check on this GPU; pixel values are made on the CPU.');
    return made?.pre;
  }

  /** Reader and manifest of a source; a URL that cannot be reached falls back to its cached manifest. */
  private async resolveSource(
    source: ModelSource,
    cache: ModelCache | undefined,
  ): Promise<{ reader?: SourceReader; manifest: Manifest; id: string; offline: boolean; label: string }> {
    if (!source || typeof source !== 'object') throw new Error('no model source was given');
    if (source.kind === 'cached') {
      const rec = await cache?.record(source.id);
      if (!rec) throw new Error('that model is no longer in the browser cache');
      // Files missing or corrupt in the cache are fetched again from where they came from.
      const reader = /^https?:/.test(rec.source) ? urlReader(rec.source) : undefined;
      return { reader, manifest: rec.manifest, id: rec.id, offline: false, label: rec.source };
    }
    const reader = await openSource(source);
    let text: string;
    try {
      text = await reader.readText('manifest.json');
    } catch (e) {
      const rec = !reader.local && e instanceof SourceError && /could not fetch/.test(e.message) ? await cache?.recordForSource(reader.label) : undefined;
      if (!rec) throw e;
      return { reader, manifest: rec.manifest, id: rec.id, offline: true, label: reader.label };
    }
    return { reader, manifest: parseManifest(text, `${reader.label} manifest.json`), id: await manifestId(text), offline: false, label: reader.label };
  }

  private filesFor(manifest: Manifest, v: ModelVariant): ManifestFile[] {
    const wanted = new Set([...RUNTIME_FILES, v.vision.model, ...v.vision.externalData, v.decoder.model, ...v.decoder.externalData]);
    return manifest.files.filter((f) => wanted.has(f.path));
  }

  private async prepare(manifest: Manifest, variant: ModelVariant, files: Map<string, Uint8Array>, maxContext: number, adapter: GPUAdapter, caps: Capabilities) {
    const warnings: string[] = [];
    const configJson = jsonOf(files, 'config.json');
    if (!configJson) throw new Error(`${manifest.name} has no config.json`);
    const check = parseMolmo2Config(configJson, jsonOf(files, 'generation_config.json'));
    if (!check.config) throw new Error(`${manifest.name}: config.json cannot be used: ${[...check.missing.map((m) => `missing ${m}`), ...check.errors].join('; ')}`);
    const config = check.config;
    const settings = parseProcessorSettings({
      preprocessor: jsonOf(files, 'preprocessor_config.json'),
      processor: jsonOf(files, 'processor_config.json'),
      video: jsonOf(files, 'video_preprocessor_config.json'),
    });
    const tokenizerJson = jsonOf(files, 'tokenizer.json');
    if (!tokenizerJson) throw new Error(`${manifest.name} has no tokenizer.json`);
    const tokenizer = new Molmo2Tokenizer(tokenizerJson, jsonOf(files, 'tokenizer_config.json') ?? {});

    setupOrt(adapter);
    const context = Math.min(maxContext, config.text.maxPositionEmbeddings);
    const vision = await createGraphSession(variant.vision, files, { preferredOutputLocation: { [VISION_OUTPUTS.imageFeatures]: 'gpu-buffer' } });
    let decoder;
    try {
      decoder = await createGraphSession(variant.decoder, files, { preferredOutputLocation: decoderOutputLocations(config.text.numLayers) });
    } catch (e) {
      await vision.session.release();
      throw e;
    }
    // onnxruntime keeps small shape computations on the CPU on purpose; only note which graphs have any.
    const cpuNodes = [vision, decoder].filter((s) => s.cpuFallback).map((s) => s.cpuFallback as string);
    const device = await ortDevice();
    let made;
    try {
      made = await allocChecked(device, () =>
        createDecoderRunner(
          decoder.session,
          { layers: config.text.numLayers, kvHeads: config.text.numKvHeads, headDim: config.text.headDim, hidden: config.text.hiddenSize },
          context,
          device,
        ),
      );
    } catch (e) {
      await vision.session.release();
      await decoder.session.release();
      throw e;
    }
    const runner = made.value;
    if (made.error) {
      // The KV cache did not fit: WebGPU reports it through the error scope, not by throwing.
      runner.dispose();
      await vision.session.release();
      await decoder.session.release();
      throw new Error(memoryErrorMessage('load', made.error, context));
    }
    const actBytes = variant.dtype === 'q4f16' || variant.dtype === 'fp16' ? 2 : 4;
    const limits = askLimits(config, settings, runner.maxContext, actBytes, caps);
    return { config, settings, tokenizer, vision: vision.session, decoder: decoder.session, runner, device, limits, warnings, cpuNodes };
  }

  /**
   * Notes a loss of the loaded model's device; an answer in flight stops (ask races it) and the model
   * is unloaded. onnxruntime destroys its device itself once every session is released (an unload):
   * that loss concerns no loaded model and is ignored (the next session gets a new device).
   */
  private watchDevice(device: GPUDevice): void {
    if (this.watched.has(device)) return;
    this.watched.add(device);
    void deviceLoss(device).then((reason) => {
      if (this.loaded?.device !== device) return;
      this.gpuLost = reason;
      this.lostListeners.forEach((fn) => fn(reason));
    });
  }

  private lostListeners = new Set<(reason: string) => void>();

  /** Rejects with GpuLostError once the device is lost; `stop` detaches. */
  private lossRace(): { promise: Promise<never>; stop: () => void } {
    let fail!: (reason: string) => void;
    const promise = new Promise<never>((_, reject) => {
      fail = (reason) => reject(new GpuLostError(gpuLostMessage(reason)));
    });
    promise.catch(() => {});
    if (this.gpuLost) fail(this.gpuLost);
    this.lostListeners.add(fail);
    return { promise, stop: () => this.lostListeners.delete(fail) };
  }

  /** One tiny run of each graph so that shader compilation happens now, not at the first question. */
  private async warmUp(m: Pick<Loaded, 'config' | 'vision' | 'runner'>): Promise<void> {
    const c = m.config;
    const patches = (c.vit.imageSize[0] / c.vit.patchSize) ** 2;
    const features = await runVision(m.vision, new Float32Array(patches * c.vit.patchSize * c.vit.patchSize * 3), 1, [0, 1, 2, 3], 4);
    if (features.location === 'gpu-buffer') features.dispose();
    m.runner.reset();
    await m.runner.step([c.tokens.bos], [0], undefined, false);
    m.runner.reset();
  }

  /** `overlap: false` (measurements) makes each batch's pixel values only after the previous vision run. */
  async ask(req: AskRequest & { returnLogits?: boolean; ignoreEos?: boolean; overlap?: boolean }, onEvent?: Callback<AskEvent>): Promise<DoneEvent> {
    const m = this.loaded;
    if (!m) throw new Error('no model is loaded');
    if (this.busy) throw new BusyError(this.busy === 'loading' ? 'the model is still loading' : 'the model is already answering; cancel it first');
    this.busy = 'asking';
    this.cancelRequested = false;
    const loss = this.lossRace();
    try {
      notify(onEvent, { type: 'stage', stage: 'preprocess' });
      const startedAt = performance.now();
      const maxNewTokens = req.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
      if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new InputError(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
      // Prompt and limits first: a request that cannot fit is refused before any pixel is read.
      const planned = planInputs(req, { config: m.config, settings: m.settings, tokenizer: m.tokenizer });
      const check = checkAskLimits(shapeOf(req), m.limits, planned.prompt.inputIds.length);
      if (!check.ok) throw new LimitError(check.message);
      // A lost device can leave a run waiting forever: the loss settles the answer instead.
      const done = await Promise.race([loss.promise, generate(
        {
          runner: m.runner,
          decode: (ids) => m.tokenizer.decode(ids),
          eosId: m.config.tokens.eos,
          cache: m.cacheState,
          features: (items, poolSize, onProgress) =>
            m.features.features(
              {
                vision: m.vision,
                device: m.device,
                hidden: m.config.text.hiddenSize,
                maxCropsPerRun: m.cropsPerRun,
                gpuIdle: () => m.device.queue.onSubmittedWorkDone(),
                isCancelled: () => this.cancelRequested || this.gpuLost !== undefined,
                gpuPixels: m.gpuPre ? (members) => gpuItemPixels(m.gpuPre, req, members, m.settings, geometryOf(m.config)) : undefined,
                onProgress,
                overlap: req.overlap,
              },
              m.featureScope,
              items,
              poolSize,
            ),
        },
        planned,
        {
          maxNewTokens,
          startedAt,
          preprocessMs: performance.now() - startedAt,
          isCancelled: () => this.cancelRequested || this.gpuLost !== undefined,
          onEvent: (e) => notify(onEvent, e),
          returnLogits: req.returnLogits,
          ignoreEos: req.ignoreEos,
        },
      )]);
      notify(onEvent, { ...done, logits: undefined });
      return done;
    } catch (e) {
      // A run failing on a destroyed device may settle before `device.lost` does: give the loss a moment.
      if (!this.gpuLost && !(e instanceof LimitError) && !(e instanceof InputError)) await Promise.race([m.device.lost, new Promise((r) => setTimeout(r, 300))]);
      let error = e as Error;
      if (this.gpuLost) {
        // Everything on the lost device is gone; a release may throw or never settle, so it is not awaited.
        error = e instanceof GpuLostError ? e : new GpuLostError(gpuLostMessage(this.gpuLost));
        void this.unloadNow().catch(() => {});
      } else if (!(e instanceof LimitError) && isMemoryError(String(error?.message ?? e))) {
        error = new Error(memoryErrorMessage('ask', String(error.message)));
        m.runner.reset();
        m.cacheState.visualId = undefined;
      }
      const message = error?.message ?? String(e);
      notify(onEvent, { type: 'error', message });
      throw error;
    } finally {
      loss.stop();
      this.busy = undefined;
      this.cancelRequested = false;
    }
  }

  /** Forgets cached vision features and/or the decoder's cached prefix (default both: the next question starts cold). */
  async clearCaches(which: { features?: boolean; prefix?: boolean } = {}): Promise<void> {
    const m = this.loaded;
    if (!m) return;
    if (this.busy) throw new BusyError('the model is answering; cancel it first');
    if (which.features !== false) m.features.clear();
    if (which.prefix !== false) {
      m.runner.reset();
      m.cacheState.visualId = undefined;
    }
  }

  /**
   * Benchmark: answers `req` for `steps` + 1 tokens (EOS ignored) and times the decode loop against
   * `steps` back-to-back bare `session.run` calls given the loop's last step's feeds and fetches, in
   * `rounds` alternating rounds (more rounds average out a machine whose speed drifts). Leaves the
   * caches as a normal answer would.
   */
  async decodeOverhead(req: AskRequest, steps: number, rounds = 2): Promise<DecodeOverhead> {
    const m = this.loaded;
    if (!m) throw new Error('no model is loaded');
    // A growing cache disposes the past tensors a step was given, so its steps cannot be replayed.
    if (m.runner.kind !== 'static') throw new Error('the decode-loop benchmark needs the static-cache (WebGPU-target) decoder');
    const session = m.decoder;
    const run = session.run.bind(session);
    let last: Parameters<typeof run> | undefined;
    let calls: number[] = [];
    const recording = (async (...args: Parameters<typeof run>) => {
      last = args;
      const t = performance.now();
      const out = await run(...args);
      calls.push(performance.now() - t);
      return out;
    }) as typeof session.run;
    let loop = 0;
    let bare = 0;
    const loopRunMs: number[] = [];
    const bareRunMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      session.run = recording;
      calls = [];
      try {
        const done = await this.ask({ ...req, maxNewTokens: steps + 1, ignoreEos: true });
        loop += done.timings.decodeMs;
      } finally {
        session.run = run;
      }
      if (!last) throw new Error('internal: the decode loop did not run');
      loopRunMs.push(...calls.slice(-steps)); // the calls before them are the prefill
      const [feeds, fetches] = last;
      const t = performance.now();
      // next_token (or logits) is a CPU output, so each run includes the same readback as a loop step.
      for (let i = 0; i < steps; i++) {
        const r = performance.now();
        await run(feeds, fetches as ort.InferenceSession.FetchesType);
        bareRunMs.push(performance.now() - r);
      }
      bare += performance.now() - t;
    }
    const loopMsPerToken = loop / (rounds * steps);
    const bareMsPerToken = bare / (rounds * steps);
    // The bare runs overwrote the cache at one position: the cached prefix is no longer what it says.
    m.runner.reset();
    m.cacheState.visualId = undefined;
    return { steps, loopMsPerToken, bareMsPerToken, ratio: loopMsPerToken / bareMsPerToken, loopRunMs, bareRunMs };
  }

  /** Stops the current answer after the decode step in flight, or aborts a download. */
  cancel(): void {
    this.cancelRequested = true;
    this.loadAbort?.abort(new DOMException('the model load was cancelled', 'AbortError'));
  }

  async unload(): Promise<void> {
    if (this.busy === 'asking') this.cancel();
    if (this.busy) throw new BusyError('wait for the current request to stop before unloading');
    await this.unloadNow();
  }

  private async unloadNow(): Promise<void> {
    const m = this.loaded;
    this.loaded = undefined;
    if (!m) return;
    m.features.clear();
    m.gpuPre?.dispose();
    m.runner.dispose();
    await m.vision.release();
    await m.decoder.release();
  }
}
