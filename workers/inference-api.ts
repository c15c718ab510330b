// Typed interface of the inference worker (comlink) and the page-side helper that starts it.
// Callbacks must be wrapped with Comlink.proxy(); ImageBitmaps in a request can be transferred with
// Comlink.transfer(request, bitmaps).
import * as Comlink from 'comlink';
import type { DecodeOverhead } from '../src/runtime/engine.ts';
import type { DoneEvent } from '../src/runtime/generate.ts';
import type {
  AskEvent,
  AskRequest,
  CachedModel,
  Capabilities,
  LoadedModel,
  LoadOptions,
  LoadProgress,
  ModelSource,
  StorageInfo,
} from '../src/runtime/api-types.ts';

export type * from '../src/runtime/api-types.ts';
export type { DecodeOverhead, DoneEvent };
export { checkAskLimits, estimatePromptTokens, type AskLimits, type AskShape, type LimitCheck } from '../src/runtime/limits.ts';

export interface InferenceApi {
  /** What this device's WebGPU adapter offers, and the weights dtype it should use. */
  capabilities(): Promise<Capabilities>;
  /** Loads a converted model (download + cache + GPU sessions); replaces the loaded one. */
  loadModel(source: ModelSource, options?: LoadOptions, onProgress?: (p: LoadProgress) => void): Promise<LoadedModel>;
  /**
   * Answers a question about images or video frames, streaming events; resolves with the final event.
   * `overlap: false` turns off the pipelining of vision batches (measurements).
   */
  ask(request: AskRequest & { returnLogits?: boolean; overlap?: boolean }, onEvent?: (e: AskEvent) => void): Promise<DoneEvent>;
  /** Forgets cached vision features and/or the cached prompt prefix (default both: the next question runs cold). */
  clearCaches(which?: { features?: boolean; prefix?: boolean }): Promise<void>;
  /** Benchmark: the decode loop's time per token against bare session.run calls on the same inputs. */
  decodeOverhead(request: AskRequest, steps: number, rounds?: number): Promise<DecodeOverhead>;
  /** Stops the answer in progress within one decode step (or aborts a model download). */
  cancel(): void;
  /** Releases the model's GPU memory. */
  unload(): Promise<void>;
  current(): Promise<LoadedModel | undefined>;
  listCachedModels(): Promise<CachedModel[]>;
  deleteCachedModel(id: string): Promise<boolean>;
  storageInfo(): Promise<StorageInfo>;
}

export interface InferenceWorker {
  api: Comlink.Remote<InferenceApi>;
  terminate(): void;
}

/**
 * Starts the inference worker (a module worker bundled by Vite). `onCrash` is called when the
 * worker fails outside any call (an uncaught error, a script that cannot load, a lost process).
 */
export function startInferenceWorker(onCrash?: (message: string) => void): InferenceWorker {
  const worker = new Worker(new URL('./inference.worker.ts', import.meta.url), { type: 'module', name: 'inference' });
  worker.addEventListener('error', (e) => {
    e.preventDefault();
    onCrash?.(e.message || 'the worker failed to start');
  });
  worker.addEventListener('messageerror', () => onCrash?.('a message could not be read'));
  const api = Comlink.wrap<InferenceApi>(worker);
  return {
    api,
    terminate: () => {
      api[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}

/** Asks the browser to keep cached models (only the page can ask; workers cannot). */
export async function requestPersistentStorage(): Promise<boolean> {
  try {
    if (await navigator.storage?.persisted?.()) return true;
    return (await navigator.storage?.persist?.()) ?? false;
  } catch {
    return false;
  }
}
