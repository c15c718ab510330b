// The page's one inference worker, started on first use and shared by the model panel and the ask box.
import type * as Comlink from 'comlink';
import { requestPersistentStorage, startInferenceWorker, type InferenceApi, type InferenceWorker } from '../../../workers/inference-api.ts';

let worker: InferenceWorker | undefined;
let replacement: InferenceWorker['api'] | undefined;

export function inference(): InferenceWorker['api'] {
  if (replacement) return replacement;
  worker ??= startInferenceWorker();
  return worker.api;
}

/** Ends the worker (and any model in it); the next call starts a fresh one. */
export function restartInference(): void {
  worker?.terminate();
  worker = undefined;
}

/**
 * Replaces the worker for UI tests whose subject is the UI (a backend that replays recorded answers).
 * The app itself never calls this.
 */
export function setInferenceBackend(api: InferenceApi): void {
  replacement = api as unknown as Comlink.Remote<InferenceApi>;
}

export { requestPersistentStorage };
