// The page's one inference worker, started on first use and shared by the model panel and the ask
// box. When the worker fails, every call in flight is rejected with a plain message, the worker is
// replaced by a fresh one (with no model), and listeners are told so the panels can say so.
import type * as Comlink from 'comlink';
import { errorCode, startInferenceWorker, type InferenceApi, type InferenceWorker } from '../../../workers/inference-api.ts';

type Api = InferenceWorker['api'];

let worker: InferenceWorker | undefined;
let crashed: { promise: Promise<never>; reject(e: Error): void } | undefined;
let supervised: Api | undefined;
let replacement: Api | undefined;
const crashListeners = new Set<(message: string) => void>();

function crashSignal() {
  let reject!: (e: Error) => void;
  const promise = new Promise<never>((_, r) => (reject = r));
  promise.catch(() => {}); // observed by the calls that race it
  return { promise, reject };
}

function start(): InferenceWorker {
  const signal = crashSignal();
  crashed = signal;
  const w = startInferenceWorker((why) => {
    if (worker !== w) return; // an old worker's last words
    const message = `The model worker stopped unexpectedly (${why}). It has been restarted; load the model again.`;
    worker = undefined;
    w.terminate();
    signal.reject(new Error(message));
    for (const fn of crashListeners) fn(message);
  });
  return w;
}

/**
 * After a GPU loss the worker has unloaded its model: replace it (the next load starts from a clean
 * GPU state) and tell the panels, which would otherwise still show the model as ready.
 */
function replaceAfterGpuLoss(message: string): void {
  if (!worker) return;
  worker.terminate();
  worker = undefined;
  crashed?.reject(new Error(message));
  for (const fn of crashListeners) fn(message);
}

/** Every call races the worker's failure, so none waits forever on a worker that is gone. */
function supervise(): Api {
  return new Proxy({} as Api, {
    get: (_, name: string) => (...args: unknown[]) => {
      worker ??= start();
      const call = (worker.api as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name](...args);
      return Promise.race([call, crashed!.promise]).catch((e: unknown) => {
        if (errorCode(e) === 'gpu-lost') replaceAfterGpuLoss(String((e as Error).message));
        throw e;
      });
    },
  });
}

export function inference(): Api {
  if (replacement) return replacement;
  supervised ??= supervise();
  return supervised;
}

/** Called with a message for the user each time the worker fails and is replaced. */
export function onInferenceCrash(fn: (message: string) => void): () => void {
  crashListeners.add(fn);
  return () => crashListeners.delete(fn);
}

/** Ends the worker (and any model in it); calls in flight are rejected; the next call starts a fresh one. */
export function restartInference(): void {
  worker?.terminate();
  worker = undefined;
  crashed?.reject(new Error('The model worker was restarted.'));
}

/**
 * Replaces the worker for UI tests whose subject is the UI (a backend that replays recorded answers).
 * The app itself never calls this.
 */
export function setInferenceBackend(api: InferenceApi): void {
  replacement = api as unknown as Comlink.Remote<InferenceApi>;
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
