// What this browser's WebGPU adapter can do, probed with a real requestAdapter() (navigator.gpu alone
// proves nothing: many Linux browsers expose it and return no adapter). Runs in the worker or a page.
import type { Capabilities } from './api-types.ts';
import { estimateAvailableMemory, NO_WEBGPU_MESSAGE, preferredDtype } from './device-plan.ts';
import { installSubgroupGuard, needsSubgroupGuard, subgroupGuardInstalled } from './subgroup-guard.ts';

export interface ProbeOptions {
  /** 'auto' hides narrow subgroups from onnxruntime; 'never' leaves the adapter untouched (tests). */
  subgroupGuard?: 'auto' | 'never';
}

export interface ProbeResult {
  capabilities: Capabilities;
  /** The adapter onnxruntime should use (undefined without WebGPU). */
  adapter?: GPUAdapter;
}

async function storageEstimate(): Promise<Capabilities['storage']> {
  try {
    const e = await navigator.storage?.estimate?.();
    return e ? { usage: e.usage ?? 0, quota: e.quota ?? 0 } : undefined;
  } catch {
    return undefined;
  }
}

export async function probeCapabilities(opts: ProbeOptions = {}): Promise<ProbeResult> {
  const deviceMemoryGiB = (navigator as Navigator & { deviceMemory?: number }).deviceMemory;
  const storage = await storageEstimate();
  const none: Capabilities = {
    webgpu: false,
    shaderF16: false,
    subgroups: false,
    subgroupGuard: false,
    maxBufferSize: 0,
    maxStorageBufferBindingSize: 0,
    estimatedMemoryBytes: estimateAvailableMemory(deviceMemoryGiB),
    deviceMemoryGiB,
    storage,
    preferredDtype: 'q4',
    message: NO_WEBGPU_MESSAGE,
  };
  if (!('gpu' in navigator) || !navigator.gpu) return { capabilities: none };
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { capabilities: { ...none, message: `${NO_WEBGPU_MESSAGE} (requestAdapter failed: ${(e as Error).message})` } };
  }
  if (!adapter) return { capabilities: none };

  // Read the features before any guard filters them.
  const features = new Set<string>([...adapter.features]);
  const info = adapter.info;
  const guard = subgroupGuardInstalled() || (opts.subgroupGuard !== 'never' && needsSubgroupGuard(adapter, features));
  if (guard) installSubgroupGuard();
  const shaderF16 = features.has('shader-f16');
  const min = info?.subgroupMinSize;
  const max = info?.subgroupMaxSize;
  const capabilities: Capabilities = {
    webgpu: true,
    adapter: {
      vendor: info?.vendor ?? '',
      architecture: info?.architecture ?? '',
      description: info?.description ?? '',
      isFallbackAdapter: Boolean(info?.isFallbackAdapter),
    },
    shaderF16,
    subgroups: features.has('subgroups'),
    subgroupSizes: typeof min === 'number' && typeof max === 'number' ? [min, max] : undefined,
    subgroupGuard: guard,
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    estimatedMemoryBytes: estimateAvailableMemory(deviceMemoryGiB),
    deviceMemoryGiB,
    storage,
    preferredDtype: preferredDtype({ shaderF16 }),
  };
  if (info?.isFallbackAdapter) {
    capabilities.message =
      'WebGPU runs on a software fallback adapter here (no hardware GPU was offered). It works, but very slowly: ' +
      'expect seconds per token even for small models.';
  } else if (!shaderF16) {
    capabilities.message = 'This GPU has no fp16 shader support (shader-f16), so the q4 weights with fp32 activations are used.';
  }
  return { capabilities, adapter };
}
