// Before a model is downloaded: can this GPU hold it? WebGPU does not say how much memory a GPU has, so
// a throwaway device allocates what the variant needs (and no more) and is destroyed. A separate
// adapter is asked for, so the one onnxruntime will use stays unconsumed.
//
// Software adapters are probed only for small models: their "GPU memory" is the process's memory,
// which the probe really takes (SwiftShader allocated 15 GiB on a 24 GiB machine, then lost its device
// rather than report an out-of-memory error); above the limit the memory estimate's warning stands.
import { probeFreeBytes } from './memory-probe.ts';

export interface FitProbe {
  /** Bytes the GPU allocated, up to what was asked; undefined when it was not probed. */
  allocatableBytes?: number;
  /** Why it was not probed. */
  skipped?: string;
}

/** The most a software adapter is asked to allocate. */
export const SOFTWARE_PROBE_LIMIT = 2 * 2 ** 30;

export async function probeGpuFit(wantBytes: number): Promise<FitProbe> {
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { skipped: 'no WebGPU adapter' };
  if (adapter.info?.isFallbackAdapter && wantBytes > SOFTWARE_PROBE_LIMIT) return { skipped: 'a software adapter is not asked for more than 2 GiB' };
  const device = await adapter.requestDevice({ requiredLimits: { maxBufferSize: adapter.limits.maxBufferSize } });
  try {
    // Its own label: the post-load probe's ('molmo2 memory probe') sizes the KV cache, and tests fail that one alone.
    return { allocatableBytes: await probeFreeBytes(device, wantBytes, undefined, 'molmo2 fit probe') };
  } finally {
    device.destroy();
  }
}
