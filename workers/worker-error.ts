// Errors that cross a worker boundary (inference, decode, annotate → page). Each carries a code the
// page acts on and a plain-language message it shows; the page never looks at the message's words.
// comlink sends a thrown Error as its message, name and stack only: `installErrorTransfer`
// (error-transfer.ts) makes the code travel too. This module has no comlink, so Node tools can use it.

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

export const isCode = (c: unknown): c is WorkerErrorCode => typeof c === 'string' && (CODES as readonly string[]).includes(c);

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
