// Decisions that depend on the device: which weights dtype to use, which variant of a converted model
// to load, whether it can fit, and how to say so in plain language. Pure functions (no DOM), so they
// are unit-tested in Node.
import { DTYPES, hasFloat16Activations, TARGETS, type Dtype, type Manifest, type ModelVariant, type Target } from '../molmo2/manifest.ts';

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
  return f.shaderF16 ? [...DTYPES] : DTYPES.filter((d) => !hasFloat16Activations(d));
}

/**
 * Whether a variant's graphs hold fp16 tensors. Besides the fp16-activation dtypes, the portable
 * (cpu-target) q4 decoder keeps its embedding table in fp16 (half the bytes for the wasm CPU EP);
 * the WebGPU-target q4 decoder stores it as int4 (or in fp32 when that cannot be done).
 */
export function needsShaderF16(dtype: Dtype, target: Target): boolean {
  return hasFloat16Activations(dtype) || ((dtype === 'q4' || dtype === 'q4-int4vision') && target === 'cpu');
}

/** Default KV-cache size bounds (tokens): at least a 16-frame video question, at most 8k. */
export const MIN_DEFAULT_CONTEXT = 2048;
export const MAX_DEFAULT_CONTEXT = 8192;
const CONTEXT_STEP = 1024;

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
  /** KV-cache tokens: the requested size, else one chosen from the memory estimate (defaultContext). */
  maxContext?: number;
}

/** Bytes per parameter of the embedding / lm_head matrix (int4 blocks of 32 with fp16 or fp32 scales). */
const MATRIX_BYTES_PER_PARAM: Record<Dtype, number> = { q4f16: 0.5 + 2 / 32, q4: 0.5 + 4 / 32, 'q4f16-int4vision': 0.5 + 2 / 32, 'q4-int4vision': 0.5 + 4 / 32, fp16: 2, fp32: 4 };

/** Bytes of a variant's files as listed in the manifest. */
export function variantBytes(manifest: Manifest, v: ModelVariant): number {
  const size = new Map(manifest.files.map((f) => [f.path, f.bytes]));
  return [v.vision.model, ...v.vision.externalData, v.decoder.model, ...v.decoder.externalData].reduce((s, p) => s + (size.get(p) ?? 0), 0);
}

/** KV-cache bytes for `tokens` tokens (fp16 for fp16-activation graphs, else fp32). */
export function kvCacheBytes(manifest: Pick<Manifest, 'architecture'>, dtype: Dtype, tokens: number): number {
  const a = manifest.architecture;
  const bytes = hasFloat16Activations(dtype) ? 2 : 4;
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

/** Whether a variant's graphs can run on the device: fp16 weights or tables need shader-f16. */
export function runsOn(facts: Pick<DeviceFacts, 'shaderF16'>, v: Pick<ModelVariant, 'dtype' | 'target'>): boolean {
  return facts.shaderF16 || !needsShaderF16(v.dtype, v.target);
}

/**
 * Picks the variant to load: a WebGPU-target variant in the requested dtype, else the best dtype the
 * device runs. Refuses when WebGPU is missing or a weight cannot be bound; warns when the whole model
 * likely exceeds the device's memory.
 */
export function chooseVariant(
  manifest: Manifest,
  facts: DeviceFacts,
  opts: { dtype?: Dtype; target?: Target; maxContext?: number; modelMaxContext?: number },
): VariantChoice {
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
  const targets: readonly Target[] = opts.target ? [opts.target] : TARGETS;
  const runs = (v: ModelVariant) => runsOn(facts, v);
  for (const dtype of order) {
    for (const target of targets) {
      variant ??= manifest.variants.find((v) => v.dtype === dtype && v.target === target && runs(v));
    }
    if (variant) break;
  }
  if (!variant && !facts.shaderF16 && order.includes('q4') && targets.includes('cpu') && manifest.variants.some((v) => v.dtype === 'q4' && v.target === 'cpu')) {
    return {
      error:
        `${manifest.name}'s q4 graphs for the cpu target keep an fp16 embedding table, which this GPU cannot read (no shader-f16). ` +
        'Load the webgpu-target q4 graphs (convert with --target webgpu) or fp32 weights instead.',
      warnings,
    };
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
  const maxContext = opts.maxContext ?? defaultContext(manifest, variant, facts, opts.modelMaxContext);
  const need = variantBytes(manifest, variant) + kvCacheBytes(manifest, variant.dtype, maxContext);
  if (need > facts.estimatedMemoryBytes) {
    warnings.push(
      `The model needs about ${formatGiB(need)} of GPU memory (weights + a ${maxContext}-token cache), more than the ` +
        `${formatGiB(facts.estimatedMemoryBytes)} this device probably has. Loading may fail or the tab may be reloaded by the browser.`,
    );
  }
  return { variant, warnings, maxContext };
}

/**
 * The KV-cache size to allocate when none is asked for: as many tokens as fit in the estimated GPU
 * memory after the weights (and a reserve for activations and the vision feature cache), in steps of
 * 1024, between MIN_DEFAULT_CONTEXT and MAX_DEFAULT_CONTEXT (and the model's own maximum). Molmo2-4B
 * q4 keeps fp32 keys and values (288 KiB per token, 2.3 GiB at 8k), so it gets less than q4f16.
 */
export function defaultContext(manifest: Manifest, variant: ModelVariant, facts: Pick<DeviceFacts, 'estimatedMemoryBytes'>, modelMax = Infinity): number {
  const reserve = Math.max(512 * 2 ** 20, facts.estimatedMemoryBytes / 8);
  const free = facts.estimatedMemoryBytes - variantBytes(manifest, variant) - reserve;
  const fits = Math.floor(free / kvCacheBytes(manifest, variant.dtype, 1) / CONTEXT_STEP) * CONTEXT_STEP;
  return Math.min(modelMax, Math.max(MIN_DEFAULT_CONTEXT, Math.min(MAX_DEFAULT_CONTEXT, fits)));
}

/**
 * Rough GPU-usable memory: half the device memory the browser reports (integrated and software GPUs
 * share system memory; browsers round deviceMemory down and cap it at 8 GiB), else 4 GiB.
 */
export function estimateAvailableMemory(deviceMemoryGiB: number | undefined): number {
  return deviceMemoryGiB && deviceMemoryGiB > 0 ? (deviceMemoryGiB * 2 ** 30) / 2 : 4 * 2 ** 30;
}

export interface ContextPlan {
  /** KV-cache tokens. */
  maxContext: number;
  /** Where the size came from: asked for by the caller, or measured on the GPU. */
  from: 'asked' | 'measured';
  kvBytesPerToken: number;
  /** Bytes the allocation probe got (capped at what the model's longest context could use). */
  measuredFreeBytes?: number;
  /** Bytes kept free for activations, vision features and other tabs. */
  reserveBytes: number;
  /** One line for the load progress and the stats panel. */
  text: string;
}

/**
 * Bytes kept free beside the KV cache: the vision feature cache, prefill activations (a few buffers
 * of the largest binding at most) and a margin — an eighth of what was free, at least 512 MiB.
 */
export function memoryReserve(freeBytes: number, featureCacheBytes: number, maxBindingBytes: number): number {
  return featureCacheBytes + Math.min(2 * maxBindingBytes, 2 * 2 ** 30) + Math.max(512 * 2 ** 20, freeBytes / 8);
}

/** What the probe should try to allocate: enough that planContext gives the model's longest context. */
export function probeTarget(kvBytesPerToken: number, modelMax: number, featureCacheBytes: number, maxBindingBytes: number): number {
  const fixed = kvBytesPerToken * modelMax + featureCacheBytes + Math.min(2 * maxBindingBytes, 2 * 2 ** 30);
  return Math.ceil(Math.max((fixed * 8) / 7, fixed + 512 * 2 ** 20)) + CONTEXT_STEP * kvBytesPerToken;
}

/**
 * The KV-cache size from the measured free GPU memory: the tokens that fit after the reserve, in
 * steps of 1024, at least MIN_DEFAULT_CONTEXT (a 16-frame video question) and at most the model's own
 * maximum. A 24 GB GPU gets a longer context than an 8 GB one.
 */
export function planContext(p: { kvBytesPerToken: number; freeBytes: number; featureCacheBytes: number; maxBindingBytes: number; modelMax: number; asked?: number }): ContextPlan {
  const reserveBytes = memoryReserve(p.freeBytes, p.featureCacheBytes, p.maxBindingBytes);
  const perToken = `${Math.round(p.kvBytesPerToken / 1024)} KiB a token`;
  if (p.asked !== undefined) {
    const maxContext = Math.min(p.asked, p.modelMax);
    return { maxContext, from: 'asked', kvBytesPerToken: p.kvBytesPerToken, reserveBytes, text: `${maxContext}-token context as asked (KV cache ${formatGiB(maxContext * p.kvBytesPerToken)}, ${perToken})` };
  }
  const fits = Math.floor((p.freeBytes - reserveBytes) / p.kvBytesPerToken / CONTEXT_STEP) * CONTEXT_STEP;
  const maxContext = Math.min(p.modelMax, Math.max(MIN_DEFAULT_CONTEXT, fits));
  const capped = maxContext === p.modelMax ? ", the model's maximum" : '';
  return {
    maxContext,
    from: 'measured',
    kvBytesPerToken: p.kvBytesPerToken,
    measuredFreeBytes: p.freeBytes,
    reserveBytes,
    text: `${maxContext}-token context${capped}: KV cache ${formatGiB(maxContext * p.kvBytesPerToken)} (${perToken}) of ${formatGiB(p.freeBytes)} measured free on the GPU after the weights, ${formatGiB(reserveBytes)} kept in reserve`,
  };
}

/** GPU memory kept beside the weights and the smallest cache when checking a model fits before its download. */
export const FIT_RESERVE_BYTES = 512 * 2 ** 20;

export interface GpuNeed {
  weightsBytes: number;
  cacheBytes: number;
  /** The cache's tokens: the context asked for, else the smallest default (a 16-frame video question). */
  cacheTokens: number;
  reserveBytes: number;
  totalBytes: number;
}

/**
 * What a variant needs on the GPU to answer at all: its weights, a KV cache of the asked context (else
 * the smallest default one) and a reserve for activations. More memory gives a longer context later.
 */
export function gpuNeed(manifest: Manifest, variant: ModelVariant, askedContext?: number): GpuNeed {
  return gpuNeedOf(manifest, variant.dtype, variantBytes(manifest, variant), askedContext);
}

/** gpuNeed before a model is converted: its architecture and the weights' (estimated) bytes. */
export function gpuNeedOf(model: Pick<Manifest, 'architecture'>, dtype: Dtype, weightsBytes: number, askedContext?: number): GpuNeed {
  const cacheTokens = askedContext ?? MIN_DEFAULT_CONTEXT;
  const cacheBytes = kvCacheBytes(model, dtype, cacheTokens);
  const totalBytes = weightsBytes + cacheBytes + FIT_RESERVE_BYTES;
  return { weightsBytes, cacheBytes, cacheTokens, reserveBytes: FIT_RESERVE_BYTES, totalBytes };
}

/**
 * The refusal when the GPU could allocate less than a variant needs (measured before the download),
 * with the numbers and what to do; undefined when it fits. `fitting`: the model's other dtypes that
 * would fit; `stopped`: what was not done.
 */
export function gpuShortfall(name: string, dtype: Dtype, need: GpuNeed, allocatableBytes: number, fitting: Dtype[], stopped = 'nothing was downloaded'): string | undefined {
  if (allocatableBytes >= need.totalBytes) return undefined;
  const other = fitting.length ? ` Its ${fitting.join(' or ')} weights would fit; or try` : ' Try';
  return (
    `${name} (${dtype}) needs about ${formatGiB(need.totalBytes)} of GPU memory — ${formatGiB(need.weightsBytes)} of weights, ` +
    `a ${need.cacheTokens}-token cache of ${formatGiB(need.cacheBytes)} and ${formatGiB(need.reserveBytes)} for activations — but this GPU could ` +
    `allocate only ${formatGiB(allocatableBytes)} just now, so ${stopped}.${other} a smaller model, or close other tabs and apps that use the GPU.`
  );
}
