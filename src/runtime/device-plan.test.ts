import { describe, expect, it } from 'vitest';
import { legacyPrecision, type Manifest, type ModelVariant } from '../molmo2/manifest.ts';
import { chooseVariant, dtypeOrder, FIT_RESERVE_BYTES, gpuNeed, gpuShortfall, planContext, probeTarget, estimateAvailableMemory, kvCacheBytes, largestWeightBytes, MAX_DEFAULT_CONTEXT, MIN_DEFAULT_CONTEXT, NO_WEBGPU_MESSAGE, needsShaderF16, preferredDtype } from './device-plan.ts';

const GiB = 2 ** 30;
const sha = 'a'.repeat(64);

function variant(dtype: ModelVariant['dtype'], target: ModelVariant['target'], mb = 100): { v: ModelVariant; files: Manifest['files'] } {
  const dir = `onnx/${target}`;
  const v: ModelVariant = {
    dtype,
    target,
    vision: { model: `${dir}/vision_${dtype}.onnx`, externalData: [`${dir}/vision_${dtype}.onnx_data`] },
    decoder: { model: `${dir}/decoder_${dtype}.onnx`, externalData: [`${dir}/decoder_${dtype}.onnx_data`] },
    precision: legacyPrecision(dtype),
  };
  const files = [v.vision.model, ...v.vision.externalData, v.decoder.model, ...v.decoder.externalData].map((path) => ({ path, bytes: path.endsWith('_data') ? mb * 2 ** 20 : 1000, sha256: sha }));
  return { v, files };
}

/** Molmo2-4B's summary with the given variants. */
function manifest(...vs: { v: ModelVariant; files: Manifest['files'] }[]): Manifest {
  return {
    format: 'molmo2-web',
    formatVersion: 1,
    name: 'Molmo2-4B',
    source: { repo: 'allenai/Molmo2-4B', revision: 'main' },
    createdAt: '',
    converterVersion: '0',
    architecture: { vitLayers: 25, vitHidden: 1152, textLayers: 36, textHidden: 2560, numHeads: 32, numKvHeads: 8, headDim: 128, vocabSize: 151936, parameters: 4.5e9, randomWeights: false },
    variants: vs.map((x) => x.v),
    files: vs.flatMap((x) => x.files),
  };
}

const gpu = { webgpu: true, shaderF16: true, maxBufferSize: 2 * GiB, maxStorageBufferBindingSize: GiB, estimatedMemoryBytes: 8 * GiB };

describe('dtype choice', () => {
  it('uses q4f16 with shader-f16 and q4 without it', () => {
    expect(preferredDtype({ shaderF16: true })).toBe('q4f16');
    expect(preferredDtype({ shaderF16: false })).toBe('q4');
    expect(dtypeOrder({ shaderF16: false })).not.toContain('q4f16');
    expect(dtypeOrder({ shaderF16: false })).not.toContain('fp16');
  });

  it('picks the WebGPU-target variant of the best dtype the device runs', () => {
    const m = manifest(variant('q4f16', 'webgpu'), variant('q4', 'cpu'), variant('q4', 'webgpu'));
    expect(chooseVariant(m, gpu, { maxContext: 4096 }).variant).toMatchObject({ dtype: 'q4f16', target: 'webgpu' });
    expect(chooseVariant(m, { ...gpu, shaderF16: false }, { maxContext: 4096 }).variant).toMatchObject({ dtype: 'q4', target: 'webgpu' });
    expect(chooseVariant(m, gpu, { target: 'cpu', maxContext: 4096 }).variant).toMatchObject({ dtype: 'q4', target: 'cpu' });
  });

  it('skips the cpu-target q4 graphs without shader-f16 (their embedding table is fp16) and says so when nothing else fits', () => {
    const both = manifest(variant('q4', 'cpu'), variant('fp32', 'cpu'));
    // (fp32 needs a binding that holds the 1.5 GB fp32 embedding table.)
    expect(chooseVariant(both, { ...gpu, shaderF16: false, maxStorageBufferBindingSize: 2 * GiB }, { target: 'cpu', maxContext: 4096 }).variant).toMatchObject({ dtype: 'fp32', target: 'cpu' });
    const only = chooseVariant(manifest(variant('q4', 'cpu')), { ...gpu, shaderF16: false }, { maxContext: 4096 });
    expect(only.variant).toBeUndefined();
    expect(only.error).toMatch(/fp16 embedding table.*shader-f16.*--target webgpu/);
    expect(needsShaderF16('q4', 'webgpu')).toBe(false);
  });

  it('explains why a model converted only to fp16 weights cannot run without shader-f16', () => {
    const m = manifest(variant('q4f16', 'webgpu'));
    const c = chooseVariant(m, { ...gpu, shaderF16: false }, { maxContext: 4096 });
    expect(c.variant).toBeUndefined();
    expect(c.error).toContain('q4f16 only');
    expect(c.error).toContain('shader-f16');
    expect(c.error).toContain('--dtype q4');
    const forced = chooseVariant(m, { ...gpu, shaderF16: false }, { dtype: 'q4f16', maxContext: 4096 });
    expect(forced.error).toContain('shader-f16');
  });
});

describe('fit checks', () => {
  it('refuses without WebGPU, in plain language', () => {
    const c = chooseVariant(manifest(variant('q4', 'webgpu')), { ...gpu, webgpu: false }, { maxContext: 4096 });
    expect(c.error).toBe(NO_WEBGPU_MESSAGE);
  });

  it('refuses when the largest weight exceeds one storage binding (small mobile limits)', () => {
    const c = chooseVariant(manifest(variant('q4', 'webgpu')), { ...gpu, shaderF16: false, maxStorageBufferBindingSize: 128 * 2 ** 20 }, { maxContext: 4096 });
    expect(c.variant).toBeUndefined();
    expect(c.error).toMatch(/at most 128 MiB per buffer.*about 2\d\d MiB/);
  });

  it('warns when weights plus the KV cache likely exceed the device memory', () => {
    const m = manifest(variant('q4f16', 'webgpu', 1300));
    const ok = chooseVariant(m, gpu, { maxContext: 4096 });
    expect(ok.warnings).toEqual([]);
    const tight = chooseVariant(m, { ...gpu, estimatedMemoryBytes: 3 * GiB }, { maxContext: 8192 });
    expect(tight.variant).toBeDefined();
    expect(tight.warnings.join(' ')).toContain('8192-token cache');
  });

  it('picks the default context from the memory estimate: less for q4 (fp32 cache) than for q4f16', () => {
    const q4 = manifest(variant('q4', 'webgpu', 1400));
    const q4f16 = manifest(variant('q4f16', 'webgpu', 1300));
    const four = { ...gpu, estimatedMemoryBytes: 4 * GiB };
    const a = chooseVariant(q4, { ...four, shaderF16: false }, {});
    const b = chooseVariant(q4f16, four, {});
    // 4 GiB − weights (2.7 / 2.5 GiB) − 512 MiB reserve: ~0.8 GiB = 2.8k tokens at 288 KiB (q4), ~7k at 144 KiB.
    expect(a.maxContext).toBe(2048);
    expect(b.maxContext).toBe(6144);
    expect(a.warnings).toEqual([]);
    expect(chooseVariant(q4f16, { ...gpu, estimatedMemoryBytes: 16 * GiB }, {}).maxContext).toBe(MAX_DEFAULT_CONTEXT);
    expect(chooseVariant(q4f16, { ...gpu, estimatedMemoryBytes: 16 * GiB }, { modelMaxContext: 4096 }).maxContext).toBe(4096);
    // Not even the smallest default fits: it is still used, with the warning.
    const tight = chooseVariant(q4, { ...gpu, shaderF16: false, estimatedMemoryBytes: 3 * GiB }, {});
    expect(tight.maxContext).toBe(MIN_DEFAULT_CONTEXT);
    expect(tight.warnings.join(' ')).toContain('2048-token cache');
    const forced = chooseVariant(q4, { ...four, shaderF16: false }, { maxContext: 8192 });
    expect(forced.maxContext).toBe(8192);
    expect(forced.warnings.join(' ')).toContain('8192-token cache');
  });

  it('sizes the KV cache at 144 KiB per token in fp16 for Molmo2-4B', () => {
    const m = manifest(variant('q4f16', 'webgpu'));
    expect(kvCacheBytes(m, 'q4f16', 1)).toBe(144 * 1024);
    expect(kvCacheBytes(m, 'q4', 1)).toBe(288 * 1024);
    expect(largestWeightBytes(m, 'q4f16')).toBeGreaterThan(200e6);
    expect(largestWeightBytes(m, 'q4f16')).toBeLessThan(256e6);
  });

  it('estimates GPU-usable memory from deviceMemory', () => {
    expect(estimateAvailableMemory(8)).toBe(4 * GiB);
    expect(estimateAvailableMemory(undefined)).toBe(4 * GiB);
    expect(estimateAvailableMemory(2)).toBe(GiB);
  });
});

describe('context plan from the measured GPU memory', () => {
  // Molmo2-4B with fp16 keys and values: 36 layers × 2 × 8 KV heads × 128 × 2 bytes = 144 KiB a token.
  const kvBytesPerToken = 36 * 2 * 8 * 128 * 2;
  const common = { kvBytesPerToken, featureCacheBytes: 256 * 2 ** 20, maxBindingBytes: 2 * GiB, modelMax: 36864 };
  const weights = 3 * GiB;

  it("gives a 24 GB GPU a longer context than an 8 GB one, up to the model's maximum", () => {
    const small = planContext({ ...common, freeBytes: 8 * GiB - weights - GiB });
    const large = planContext({ ...common, freeBytes: 24 * GiB - weights - GiB });
    expect(small.from).toBe('measured');
    expect(small.maxContext).toBeGreaterThan(MIN_DEFAULT_CONTEXT);
    expect(small.maxContext).toBeLessThan(large.maxContext);
    expect(large.maxContext).toBe(36864);
    expect(small.maxContext % 1024).toBe(0);
    // What is left after the cache covers the reserve.
    expect(small.maxContext * kvBytesPerToken + small.reserveBytes).toBeLessThanOrEqual(small.measuredFreeBytes!);
    expect(large.text).toMatch(/^36864-token context, the model's maximum: KV cache 5\.1 GiB \(144 KiB a token\) of 20\.0 GiB measured free/);
  });

  it('never goes below the smallest useful context, and takes an asked size as it is', () => {
    expect(planContext({ ...common, freeBytes: 100 * 2 ** 20 }).maxContext).toBe(MIN_DEFAULT_CONTEXT);
    const asked = planContext({ ...common, freeBytes: 0, asked: 640 });
    expect(asked).toMatchObject({ maxContext: 640, from: 'asked' });
    expect(planContext({ ...common, freeBytes: 0, asked: 10 ** 6 }).maxContext).toBe(36864);
  });

  it('asks the probe for just enough to reach the longest context', () => {
    const want = probeTarget(kvBytesPerToken, common.modelMax, common.featureCacheBytes, common.maxBindingBytes);
    expect(planContext({ ...common, freeBytes: want }).maxContext).toBe(36864);
    expect(planContext({ ...common, freeBytes: want - 2 * 1024 * kvBytesPerToken }).maxContext).toBeLessThan(36864);
  });
});

describe('GPU fit before the download', () => {
  // Molmo2-4B q4 keeps fp32 keys and values: 36 layers × 2 × 8 heads × 128 × 4 bytes = 288 KiB a token.
  const q4 = variant('q4', 'webgpu', 3000);
  const q4f16 = variant('q4f16', 'webgpu', 2800);
  const m = manifest(q4, q4f16);

  it('needs the weights, the smallest default cache (or the asked one) and a reserve', () => {
    const need = gpuNeed(m, q4.v);
    expect(need.weightsBytes).toBe(2 * 3000 * 2 ** 20 + 2000);
    expect(need.cacheTokens).toBe(MIN_DEFAULT_CONTEXT);
    expect(need.cacheBytes).toBe(MIN_DEFAULT_CONTEXT * 288 * 1024);
    expect(need.totalBytes).toBe(need.weightsBytes + need.cacheBytes + FIT_RESERVE_BYTES);
    // fp16 activations halve the cache; an asked context replaces the default.
    expect(gpuNeed(m, q4f16.v, 8192).cacheBytes).toBe(8192 * 144 * 1024);
  });

  it('refuses with the numbers and the dtypes that would fit, and passes what fits', () => {
    const need = gpuNeed(m, q4.v);
    expect(gpuShortfall(m.name, 'q4', need, need.totalBytes, [])).toBeUndefined();
    const message = gpuShortfall(m.name, 'q4', need, 4 * GiB, ['q4f16'])!;
    expect(message).toContain('Molmo2-4B (q4) needs about 6.9 GiB of GPU memory');
    expect(message).toContain('5.9 GiB of weights, a 2048-token cache of 576 MiB and 512 MiB for activations');
    expect(message).toContain('allocate only 4.0 GiB just now, so nothing was downloaded');
    expect(message).toContain('Its q4f16 weights would fit');
    expect(gpuShortfall(m.name, 'q4', need, GiB, [])).toContain(' Try a smaller model');
  });
});
