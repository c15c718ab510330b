// GPU faults a user can act on: a lost device (driver reset, laptop sleep, another tab) and memory the
// GPU cannot allocate. Turns them into plain messages; the engine unloads and stays ready.
import { WorkerError } from '../../workers/worker-error.ts';

/**
 * The GPU device went away; the sessions on it are gone and the model must be loaded again. Its code
 * tells the page to replace the worker (onnxruntime keeps one device per worker).
 */
export class GpuLostError extends WorkerError {
  constructor(message: string) {
    super('gpu-lost', message);
  }
}

/** The GPU could not allocate what was asked. */
export class GpuMemoryError extends WorkerError {
  constructor(message: string) {
    super('out-of-memory', message);
  }
}

export function gpuLostMessage(reason: string | undefined): string {
  const why = reason?.trim() ? ` (${reason.trim()})` : '';
  return `The GPU was lost${why}, so this answer was stopped and the model unloaded. Your results are kept; reload the model to continue.`;
}

/** Resolves with the loss reason once `device` is lost (never, otherwise). */
export function deviceLoss(device: GPUDevice): Promise<string> {
  return device.lost.then((info) => info.message || info.reason || 'unknown reason');
}

// onnxruntime and WebGPU word allocation failures in several ways; all mean "too big for this GPU".
const MEMORY = /out of memory|\boom\b|failed to allocate|allocation failed|could not allocate|bad_alloc|exceeds the max(imum)? (buffer|binding)|maxBufferSize|maxStorageBufferBindingSize|buffer size .* exceeds/i;

export function isMemoryError(message: string): boolean {
  return MEMORY.test(message);
}

/** A plain message for an allocation failure while preparing (`context` tokens) or answering. */
export function memoryErrorMessage(when: 'load' | 'ask', detail: string, context?: number): string {
  const head =
    when === 'load'
      ? `The GPU could not allocate the memory this model needs${context ? ` with a ${context}-token context` : ''}.`
      : 'The GPU ran out of memory while answering.';
  const fix =
    when === 'load'
      ? 'Load it with a smaller context (maxContext) or a smaller dtype (q4), or close other tabs that use the GPU.'
      : 'Ask about fewer frames or a shorter range, or load the model with a smaller context.';
  // Dawn's messages run over several lines (the failing call, the object's label): keep one line.
  return `${head} ${fix} (${detail.replace(/\s+/g, ' ').trim().slice(0, 200)})`;
}

/**
 * Runs `alloc` inside out-of-memory and validation error scopes: WebGPU reports a failed createBuffer
 * through the scope, not by throwing, and the buffer would fail later. `error` is set on a failure
 * (the caller disposes `value`).
 */
export async function allocChecked<T>(device: GPUDevice, alloc: () => T): Promise<{ value: T; error?: string }> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let value: T | undefined;
  let thrown: unknown;
  try {
    value = alloc();
  } catch (e) {
    thrown = e;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (thrown !== undefined) throw thrown;
  const err = oom ?? validation;
  return { value: value as T, error: err ? `${oom ? 'out of memory' : 'allocation failed'}: ${err.message.split('\n')[0].trim()}` : undefined };
}
