// The inference worker's implementation: one model and one request at a time. A small state machine
// (idle → loading | asking → idle) over the loader (model-loader.ts), the answer session (answer.ts)
// and the device-loss watch (device-loss.ts); every error leaves it coded (workers/worker-error.ts).
import { toWorkerError, WorkerError } from '../../workers/worker-error.ts';
import { answer, type AnswerTuning } from './answer.ts';
import type { AskEvent, AskRequest, CachedModel, Capabilities, LoadedModel, LoadOptions, LoadProgress, ModelSource, StorageInfo } from './api-types.ts';
import { probeCapabilities, type ProbeOptions, type ProbeResult } from './capabilities.ts';
import { DeviceLossWatch } from './device-loss.ts';
import type { DoneEvent } from './generate.ts';
import { loadModel, type ModelHandle } from './model-loader.ts';
import type { Callback } from './notify.ts';
import { ModelCache } from './opfs-cache.ts';

export class BusyError extends WorkerError {
  constructor(message: string) {
    super('busy', message);
  }
}

/** Rethrows anything as a coded error, so that it crosses to the page with its code. */
const coded = (e: unknown): never => {
  throw toWorkerError(e);
};

export class InferenceEngine {
  private probe?: Promise<ProbeResult>;
  private loaded?: ModelHandle;
  private busy?: 'loading' | 'asking';
  private cancelRequested = false;
  private loadAbort?: AbortController;
  private cachePromise?: Promise<ModelCache | undefined>;
  private readonly loss = new DeviceLossWatch((device) => this.loaded?.device === device);

  constructor(private readonly probeOptions: ProbeOptions = {}) {}

  private cache(): Promise<ModelCache | undefined> {
    this.cachePromise ??= ModelCache.open();
    return this.cachePromise;
  }

  async capabilities(): Promise<Capabilities> {
    this.probe ??= probeCapabilities(this.probeOptions);
    const { capabilities } = await this.probe;
    return { ...capabilities, storage: await storageEstimate() };
  }

  async storageInfo(): Promise<StorageInfo> {
    return (await storageEstimate()) ?? { usage: 0, quota: 0 };
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

  /** Loads a model in place of the current one (released first: a failed load leaves none). */
  async loadModel(source: ModelSource, options: LoadOptions = {}, onProgress?: Callback<LoadProgress>): Promise<LoadedModel> {
    if (this.busy) throw new BusyError(this.busy === 'loading' ? 'a model is already loading' : 'the model is answering; cancel it first');
    this.busy = 'loading';
    this.cancelRequested = false;
    const abort = new AbortController();
    this.loadAbort = abort;
    try {
      await this.drop();
      const refused = this.loss.refusal();
      if (refused) throw refused;
      const probe = await (this.probe ??= probeCapabilities(this.probeOptions));
      const m = await loadModel(source, options, {
        probe,
        openCache: () => this.cache(),
        signal: abort.signal,
        onProgress,
        onDevice: (device) => this.loss.watch(device),
      });
      this.loaded = m;
      return m.info;
    } catch (e) {
      return coded(e);
    } finally {
      this.busy = undefined;
      this.loadAbort = undefined;
    }
  }

  /** Answers a question, streaming events. `tuning` serves tests and measurements only (the worker never passes it). */
  async ask(req: AskRequest, onEvent?: Callback<AskEvent>, tuning?: AnswerTuning): Promise<DoneEvent> {
    const m = this.loaded;
    if (!m) throw new WorkerError('bad-input', 'no model is loaded');
    if (this.busy) throw new BusyError(this.busy === 'loading' ? 'the model is still loading' : 'the model is already answering; cancel it first');
    this.busy = 'asking';
    this.cancelRequested = false;
    try {
      return await answer(m, req, { isCancelled: () => this.cancelRequested || this.loss.reason !== undefined, loss: this.loss, onEvent, tuning });
    } catch (e) {
      // Everything on a lost device is gone; a release may throw or never settle, so it is not awaited.
      if (this.loss.reason) void this.drop().catch(() => {});
      return coded(e);
    } finally {
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
    if (which.prefix !== false) m.forgetPrefix();
  }

  /** Stops the current answer after the decode step in flight, or aborts a download. */
  cancel(): void {
    this.cancelRequested = true;
    this.loadAbort?.abort(new DOMException('the model load was cancelled', 'AbortError'));
  }

  async unload(): Promise<void> {
    if (this.busy === 'asking') this.cancel();
    if (this.busy) throw new BusyError('wait for the current request to stop before unloading');
    await this.drop();
  }

  private async drop(): Promise<void> {
    const m = this.loaded;
    this.loaded = undefined;
    await m?.dispose();
  }
}

async function storageEstimate(): Promise<StorageInfo | undefined> {
  try {
    const e = await navigator.storage.estimate();
    return { usage: e.usage ?? 0, quota: e.quota ?? 0 };
  } catch {
    return undefined;
  }
}
