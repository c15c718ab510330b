import { describe, expect, it } from 'vitest';
import { errorCode } from '../../workers/worker-error.ts';
import { allocChecked, GpuLostError, gpuLostMessage, isMemoryError, memoryErrorMessage } from './gpu-faults.ts';

describe('GPU faults', () => {
  it('words a lost device plainly and marks it for the page', () => {
    const m = gpuLostMessage('Device was destroyed.');
    expect(m).toBe('The GPU was lost (Device was destroyed.), so this answer was stopped and the model unloaded. Your results are kept; reload the model to continue.');
    expect(errorCode(new GpuLostError(m))).toBe('gpu-lost');
    expect(gpuLostMessage('')).toMatch(/^The GPU was lost, so/);
  });

  it('recognises allocation failures from WebGPU and onnxruntime, not other errors', () => {
    for (const m of ['out of memory: Failed to allocate buffer', 'Buffer size (8589934592) exceeds the max buffer size limit (4294967296).', 'bad_alloc', 'Failed to allocate memory for requested buffer of size 123'])
      expect(isMemoryError(m), m).toBe(true);
    for (const m of ['the context is full (640 tokens)', 'the model load was cancelled', 'requires f16']) expect(isMemoryError(m), m).toBe(false);
  });

  it('suggests something smaller', () => {
    expect(memoryErrorMessage('load', 'out of memory', 8192)).toMatch(/with a 8192-token context\. Load it with a smaller context \(maxContext\) or a smaller dtype/);
    expect(memoryErrorMessage('ask', 'out of memory')).toMatch(/fewer frames or a shorter range/);
    // Dawn's multi-line messages end up on one line.
    expect(memoryErrorMessage('ask', 'out of memory\n - While calling [Device].CreateBuffer("x").\n')).toMatch(/\(out of memory - While calling \[Device\]\.CreateBuffer\("x"\)\.\)$/);
  });

  it('reports an allocation the error scopes caught, and passes values through', async () => {
    const scopes: string[] = [];
    const errors: Record<string, GPUError | null> = { 'out-of-memory': { message: 'no room' } as GPUError, validation: null };
    const device = {
      pushErrorScope: (f: string) => scopes.push(f),
      popErrorScope: async () => errors[scopes.pop()!],
    } as unknown as GPUDevice;
    expect(await allocChecked(device, () => 7)).toEqual({ value: 7, error: 'out of memory: no room' });
    errors['out-of-memory'] = null;
    expect(await allocChecked(device, () => 8)).toEqual({ value: 8, error: undefined });
    await expect(allocChecked(device, () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(scopes).toEqual([]);
  });
});
