// Makes a WorkerError's code cross a comlink boundary (comlink alone sends only an Error's message,
// name and stack). Installed by every worker and by the page-side interfaces.
import * as Comlink from 'comlink';
import { errorCode, errorMessage, isCode, WorkerError, type WorkerErrorCode } from './worker-error.ts';

type Thrown = { isError: true; value: { code: WorkerErrorCode; message: string; stack?: string } } | { isError: false; value: unknown };

const throwMarker = (Comlink.transferHandlers.get('throw') as Comlink.TransferHandler<{ value: unknown }, Thrown>).canHandle;

/**
 * Replaces comlink's handler for thrown values: an Error crosses as { code, message } and arrives as
 * a WorkerError; anything else thrown crosses as it is. Install on both sides (idempotent).
 */
export function installErrorTransfer(): void {
  const handler: Comlink.TransferHandler<{ value: unknown }, Thrown> = {
    canHandle: throwMarker,
    serialize({ value }) {
      if (value instanceof Error || (value as { name?: unknown } | null)?.name === 'AbortError') {
        return [{ isError: true, value: { code: errorCode(value), message: errorMessage(value), stack: (value as Error).stack } }, []];
      }
      return [{ isError: false, value }, []];
    },
    deserialize(thrown) {
      if (!thrown.isError) throw thrown.value;
      const e = new WorkerError(isCode(thrown.value.code) ? thrown.value.code : 'internal', thrown.value.message);
      if (thrown.value.stack) e.stack = thrown.value.stack;
      throw e;
    },
  };
  Comlink.transferHandlers.set('throw', handler);
}
