// Typed interface of the inference worker (comlink) and the page-side helper that starts it. This is
// the page's only way into the runtime: the types and the few pure helpers it needs are named here.
// Callbacks must be wrapped with Comlink.proxy(); ImageBitmaps in a request can be transferred with
// Comlink.transfer(request, bitmaps). A call rejects with a WorkerError: act on its `code`, show its message.
import * as Comlink from 'comlink';
import type { DoneEvent } from '../src/runtime/generate.ts';
import type { AskEvent, AskRequest, CachedModel, Capabilities, LoadedModel, LoadOptions, LoadProgress, ModelSource, StorageInfo } from '../src/runtime/api-types.ts';
import { wrapWorker, type WrappedWorker } from './wrap-worker.ts';

export type { DoneEvent } from '../src/runtime/generate.ts';
export type {
  AdapterSummary,
  AskEvent,
  AskRequest,
  AskVisual,
  CachedModel,
  Capabilities,
  FileProgress,
  ImageInput,
  LoadedModel,
  LoadOptions,
  LoadProgress,
  LoadStage,
  ModelSource,
  RgbaImage,
  StageTimings,
  StorageInfo,
} from '../src/runtime/api-types.ts';
export { checkAskLimits, estimatePromptTokens, type AskLimits, type AskShape, type LimitCheck } from '../src/runtime/limits.ts';
export { formatBytes, formatDuration } from '../src/runtime/progress.ts';
export { errorCode, WorkerError, type WorkerErrorCode } from './worker-error.ts';

export interface InferenceApi {
  /** What this device's WebGPU adapter offers, and the weights dtype it should use. */
  capabilities(): Promise<Capabilities>;
  /** Loads a converted model (download + cache + GPU sessions); replaces the loaded one. */
  loadModel(source: ModelSource, options?: LoadOptions, onProgress?: (p: LoadProgress) => void): Promise<LoadedModel>;
  /** Answers a question about images or video frames, streaming events; resolves with the final event. */
  ask(request: AskRequest, onEvent?: (e: AskEvent) => void): Promise<DoneEvent>;
  /** Forgets cached vision features and/or the cached prompt prefix (default both: the next question runs cold). */
  clearCaches(which?: { features?: boolean; prefix?: boolean }): Promise<void>;
  /** Stops the answer in progress within one decode step (or aborts a model download). */
  cancel(): void;
  /** Releases the model's GPU memory. */
  unload(): Promise<void>;
  current(): Promise<LoadedModel | undefined>;
  listCachedModels(): Promise<CachedModel[]>;
  deleteCachedModel(id: string): Promise<boolean>;
  storageInfo(): Promise<StorageInfo>;
}

export type InferenceWorker = WrappedWorker<InferenceApi>;

/**
 * Starts the inference worker (a module worker bundled by Vite). `onCrash` is called when the
 * worker fails outside any call (an uncaught error, a script that cannot load, a lost process).
 */
export function startInferenceWorker(onCrash?: (message: string) => void): InferenceWorker {
  return wrapWorker<InferenceApi>(new Worker(new URL('./inference.worker.ts', import.meta.url), { type: 'module', name: 'inference' }), onCrash);
}
