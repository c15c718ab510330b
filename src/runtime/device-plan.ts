// Decisions that depend on the device: which weights dtype to use, which variant of a converted model
// to load, whether it can fit, and how to say so in plain language. Pure functions (no DOM), so they
// are unit-tested in Node.
import type { Dtype, Manifest, ModelVariant, Target } from '../molmo2/manifest.ts';

export interface DeviceFacts {
  webgpu: boolean;
  shaderF16: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  estimatedMemoryBytes: number;
}

/** fp16 activations need `shader-f16`; without it the fp32-activation q4 weights are the choice. */
export function preferredDtype(f: Pick<DeviceFacts, 'shaderF16'>): Dtype {
  return f.shaderF16 ? 'q4f16' : 'q4';
}

/** Dtypes this device can run, best first. */
export function dtypeOrder(f: Pick<DeviceFacts, 'shaderF16'>): Dtype[] {
  return f.shaderF16 ? ['q4f16', 'q4', 'fp16', 'fp32'] : ['q4', 'fp32'];
}

export const NO_WEBGPU_MESSAGE =
  'This browser did not give access to a WebGPU graphics adapter, so the model cannot run here. ' +
  'Use a recent Chrome or Edge (113 or newer) on a computer with a supported GPU, Safari 26 on macOS, ' +
  'or Firefox with WebGPU enabled. On Linux, Chrome may need chrome://flags/#enable-unsafe-webgpu. ' +
  'A CPU-only fallback is not offered: a multi-billion-parameter model does not fit in WebAssembly memory.';

export interface VariantChoice {
  variant?: ModelVariant;
  /** Why no variant fits, in plain language. */
  error?: string;
  /** Caveats about the chosen variant. */
  warnings: string[];
}

const MATRIX_BYTES_PER_PARAM: Record<Dtype, number> = { q4f16: 0.5 + 2 / 32, q4: 0.5 + 4 / 32, fp16: 2, fp32: 4 };

/** Bytes of a variant's files as listed in the manifest. */
export function variantBytes(manifest: Manifest, v: ModelVariant): number {
  const size = new Map(manifest.files.map((f) => [f.path, f.bytes]));
  return [v.vision.model, ...v.vision.externalData, v.decoder.model, ...v.decoder.externalData].reduce((s, p) => s + (size.get(p) ?? 0), 0);
}

/** KV-cache bytes for `tokens` tokens (fp16 for q4f16/fp16 graphs, else fp32). */
export function kvCacheBytes(manifest: Manifest, dtype: Dtype, tokens: number): number {
  const a = manifest.architecture;
  const bytes = dtype === 'q4f16' || dtype === 'fp16' ? 2 : 4;
  return a.textLayers * 2 * a.numKvHeads * a.headDim * tokens * bytes;
}

/** The largest single weight (the embedding / lm_head matrix), which must fit one storage binding. */
export function largestWeightBytes(manifest: Manifest, dtype: Dtype): number {
  const a = manifest.architecture;
  return Math.ceil(a.vocabSize * a.textHidden * MATRIX_BYTES_PER_PARAM[dtype]);
}

export function formatGiB(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.max(1, Math.round(bytes / 2 ** 20))} MiB`;
}

/**
 * Picks the variant to load: a WebGPU-target variant in the requested dtype, else the best dtype the
 * device runs. Refuses when WebGPU is missing or a weight cannot be bound; warns when the whole model
 * likely exceeds the device's memory.
 */
export function chooseVariant(manifest: Manifest, facts: DeviceFacts, opts: { dtype?: Dtype; target?: Target; maxContext: number }): VariantChoice {
  const warnings: string[] = [];
  if (!facts.webgpu) return { error: NO_WEBGPU_MESSAGE, warnings };
  if (manifest.variants.length === 0) return { error: `${manifest.name} has no converted variants.`, warnings };
  const runnable = dtypeOrder(facts);
  if (opts.dtype && !runnable.includes(opts.dtype)) {
    return {
      error: `${opts.dtype} weights need fp16 shader support (shader-f16), which this GPU lacks. Choose q4 or fp32 instead.`,
      warnings,
    };
  }
  const order = opts.dtype ? [opts.dtype] : runnable;
  let variant: ModelVariant | undefined;
  const targets: Target[] = opts.target ? [opts.target] : ['webgpu', 'cpu'];
  for (const dtype of order) {
    for (const target of targets) {
      variant ??= manifest.variants.find((v) => v.dtype === dtype && v.target === target);
    }
    if (variant) break;
  }
  if (!variant) {
    const have = [...new Set(manifest.variants.map((v) => v.dtype))].join(', ');
    const wanted = `${opts.dtype ?? order.join(' or ')}${opts.target ? ` (${opts.target} target)` : ''}`;
    const hint = facts.shaderF16 ? '' : ' This GPU has no fp16 shader support (shader-f16), so fp16 weights cannot run on it.';
    return {
      error: `${manifest.name} was converted to ${have} only; this device needs ${wanted}.${hint} Convert it again with --dtype ${order[0]}.`,
      warnings,
    };
  }
  if (variant.target !== 'webgpu') warnings.push(`Using the ${variant.target}-target graphs on WebGPU: correct, but slower than the WebGPU-target graphs.`);

  const largest = largestWeightBytes(manifest, variant.dtype);
  if (largest > facts.maxStorageBufferBindingSize) {
    return {
      error:
        `This GPU can bind at most ${formatGiB(facts.maxStorageBufferBindingSize)} per buffer, but the model's largest weight ` +
        `needs about ${formatGiB(largest)}. The model cannot run on this device.`,
      warnings,
    };
  }
  const need = variantBytes(manifest, variant) + kvCacheBytes(manifest, variant.dtype, opts.maxContext);
  if (need > facts.estimatedMemoryBytes) {
    warnings.push(
      `The model needs about ${formatGiB(need)} of GPU memory (weights + a ${opts.maxContext}-token cache), more than the ` +
        `${formatGiB(facts.estimatedMemoryBytes)} this device probably has. Loading may fail or the tab may be reloaded by the browser.`,
    );
  }
  return { variant, warnings };
}

/**
 * Rough GPU-usable memory: half the device memory the browser reports (integrated and software GPUs
 * share system memory; browsers round deviceMemory down and cap it at 8 GiB), else 4 GiB.
 */
export function estimateAvailableMemory(deviceMemoryGiB: number | undefined): number {
  return deviceMemoryGiB && deviceMemoryGiB > 0 ? (deviceMemoryGiB * 2 ** 30) / 2 : 4 * 2 ** 30;
}
