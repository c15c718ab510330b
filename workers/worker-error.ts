// Errors that cross a worker boundary (inference, decode, annotate → page). Each carries a code the
// page acts on and a plain-language message it shows; the page never looks at the message's words.
// comlink sends a thrown Error as its message, name and stack only: `installErrorTransfer` makes the
// code travel too (called by every worker and by the page-side interfaces).
import * as Comlink from 'comlink';

export type WorkerErrorCode =
  /** The GPU device was lost; the worker must be replaced before the next load. */
  | 'gpu-lost'
  /** The GPU could not allocate what was asked (smaller context, dtype or fewer frames help). */
  | 'out-of-memory'
  /** The request exceeds what the loaded model / this GPU takes (the message gives the numbers). */
  | 'limit'
  /** The worker is loading or answering; the call was refused. */
  | 'busy'
  /** The request or the file given cannot be used (empty question, unreadable video, bad option). */
  | 'bad-input'
  /** This browser or GPU cannot do it (no WebGPU, no decoder or encoder for the codec, no shader-f16). */
  | 'unsupported'
  /** A model file is missing, cut short, corrupt or not a converted model. */
  | 'model-file'
  /** A source could not be reached. */
  | 'network'
  /** Stopped on request. */
  | 'cancelled'
  /** Anything else (a bug or an unexpected failure underneath). */
  | 'internal';

const CODES: readonly WorkerErrorCode[] = ['gpu-lost', 'out-of-memory', 'limit', 'busy', 'bad-input', 'unsupported', 'model-file', 'network', 'cancelled', 'internal'];

export class WorkerError extends Error {
  constructor(
    readonly code: WorkerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WorkerError';
  }
}

const isCode = (c: unknown): c is WorkerErrorCode => typeof c === 'string' && (CODES as readonly string[]).includes(c);

/** The code of anything thrown: a WorkerError's (or one rebuilt from a crossing), an abort's, else 'internal'. */
export function errorCode(e: unknown): WorkerErrorCode {
  const code = (e as { code?: unknown } | null)?.code;
  if (isCode(code)) return code;
  if ((e as { name?: unknown } | null)?.name === 'AbortError') return 'cancelled';
  return 'internal';
}

/** The plain message of anything thrown. */
export function errorMessage(e: unknown): string {
  return e instanceof Error || (typeof e === 'object' && e !== null && 'message' in e) ? String((e as { message: unknown }).message) : String(e);
}

/** `e` as a WorkerError: unchanged when it is one, else with its code (errorCode) and message. */
export function toWorkerError(e: unknown): WorkerError {
  return e instanceof WorkerError ? e : new WorkerError(errorCode(e), errorMessage(e));
}

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
