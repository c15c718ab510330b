// A started worker as a typed comlink interface whose errors carry their codes, and a terminate that
// also releases the proxy. `onCrash` hears of failures outside any call (an uncaught error, a script
// that cannot load, a message that cannot be read). The caller makes the Worker itself: Vite bundles
// a worker only from a literal `new Worker(new URL('./x.worker.ts', import.meta.url))`.
import * as Comlink from 'comlink';
import { installErrorTransfer } from './error-transfer.ts';

export interface WrappedWorker<T> {
  api: Comlink.Remote<T>;
  terminate(): void;
}

export function wrapWorker<T>(worker: Worker, onCrash?: (message: string) => void): WrappedWorker<T> {
  installErrorTransfer();
  if (onCrash) {
    worker.addEventListener('error', (e) => {
      e.preventDefault();
      onCrash(e.message || 'the worker failed to start');
    });
    worker.addEventListener('messageerror', () => onCrash('a message could not be read'));
  }
  const api = Comlink.wrap<T>(worker);
  return {
    api,
    terminate: () => {
      api[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}
