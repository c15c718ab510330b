// Test worker: runs one small graph on the WebGPU EP, with or without the subgroup guard. One worker
// per configuration, because onnxruntime creates its GPU device once per worker.
import * as Comlink from 'comlink';
import { probeCapabilities } from '../src/runtime/capabilities.ts';
import { gpuMemory, installGpuCounters, resetGpuPeak } from '../src/runtime/gpu-counters.ts';
import { setupOrt, webgpuSessionOptions } from '../src/runtime/ort.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS, WEBGPU_DECODER_INPUTS } from '../src/molmo2/onnx/io.ts';

export interface FeedSpec {
  type: 'float32' | 'int32' | 'int64';
  data: Float32Array | Int32Array | BigInt64Array;
  dims: number[];
}

/** A cold prefill of the static-cache decoder: the prompt and the decoder's widths. */
export interface PrefillSpec {
  inputIds: number[];
  tokenTypeIds: number[];
  /** Rows of image_features (one per <im_patch> token), made here as sin(i · 0.013) · 0.8. */
  featureRows: number;
  hidden: number;
  layers: number;
  kvHeads: number;
  headDim: number;
}

/**
 * Cold prefills of a WebGPU decoder graph, one per spec in one session (a short first spec compiles the
 * kernels), each with a KV cache sized to its prompt: logits, time, and the GPU memory the run took
 * (buffer bytes held at its peak beyond what the session and its inputs held before it).
 */
async function prefillRuns(model: Uint8Array | string, specs: readonly PrefillSpec[]) {
  installGpuCounters();
  const { adapter, capabilities } = await probeCapabilities();
  if (!adapter) throw new Error(capabilities.message);
  const ort = await setupOrt(adapter);
  const bytes = typeof model === 'string' ? new Uint8Array(await (await fetch(model)).arrayBuffer()) : model;
  const created = performance.now();
  const session = await ort.InferenceSession.create(bytes, webgpuSessionOptions({ extra: { session: { disable_cpu_ep_fallback: '0' } } }));
  const createMs = performance.now() - created;
  const device = (await ort.env.webgpu.device) as GPUDevice;
  const results = [];
  try {
    for (const spec of specs) {
      const S = spec.inputIds.length;
      const int64 = (v: number[]) => new ort.Tensor('int64', BigInt64Array.from(v, BigInt), [1, v.length]);
      const features = Float32Array.from({ length: spec.featureRows * spec.hidden }, (_, i) => Math.sin(i * 0.013) * 0.8);
      const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
        [DECODER_INPUTS.inputIds]: int64(spec.inputIds),
        [DECODER_INPUTS.imageFeatures]: new ort.Tensor('float32', features, [spec.featureRows, spec.hidden]),
        [DECODER_INPUTS.tokenTypeIds]: int64(spec.tokenTypeIds),
        [WEBGPU_DECODER_INPUTS.positionIds]: int64(Array.from({ length: S }, (_, i) => i)),
        [WEBGPU_DECODER_INPUTS.seqlensK]: new ort.Tensor('int32', Int32Array.of(S - 1), [1]),
        [WEBGPU_DECODER_INPUTS.totalSequenceLength]: new ort.Tensor('int32', Int32Array.of(S), []),
      };
      // The cache lives on the GPU, bound as both past and present, as the runtime does.
      const fetches: Record<string, InstanceType<typeof ort.Tensor> | null> = { [DECODER_OUTPUTS.logits]: null };
      const buffers: GPUBuffer[] = [];
      for (let i = 0; i < spec.layers; i++) {
        for (const [input, output] of [
          [DECODER_INPUTS.pastKey(i), DECODER_OUTPUTS.presentKey(i)],
          [DECODER_INPUTS.pastValue(i), DECODER_OUTPUTS.presentValue(i)],
        ]) {
          const buffer = device.createBuffer({ size: spec.kvHeads * S * spec.headDim * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
          buffers.push(buffer);
          const tensor = ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: [1, spec.kvHeads, S, spec.headDim] });
          feeds[input] = tensor;
          fetches[output] = tensor;
        }
      }
      resetGpuPeak();
      const before = gpuMemory().liveBytes;
      const start = performance.now();
      try {
        const out = await session.run(feeds, fetches);
        const logits = (await out[DECODER_OUTPUTS.logits].getData()) as Float32Array;
        results.push({ tokens: S, logits, ms: performance.now() - start, runBytes: gpuMemory().peakBytes - before, error: undefined as string | undefined });
      } catch (e) {
        results.push({ tokens: S, logits: new Float32Array(0), ms: performance.now() - start, runBytes: gpuMemory().peakBytes - before, error: e instanceof Error ? e.message : String(e) });
      } finally {
        for (const b of buffers) b.destroy();
      }
    }
  } finally {
    await session.release();
  }
  return { results, createMs, adapter: capabilities.adapter };
}

const api = {
  prefillRuns,
  async runGraph(guard: 'auto' | 'never', model: Uint8Array, feeds: Record<string, FeedSpec>, output: string) {
    const { capabilities, adapter } = await probeCapabilities({ subgroupGuard: guard });
    if (!adapter) throw new Error(capabilities.message);
    const ort = await setupOrt(adapter);
    const session = await ort.InferenceSession.create(model, webgpuSessionOptions());
    const tensors = Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, new ort.Tensor(f.type, f.data, f.dims)]));
    const result = await session.run(tensors);
    const data = (await result[output].getData()) as Float32Array;
    await session.release();
    return { capabilities, data };
  },
  /** Milliseconds of each of `runs` runs after one warm-up run (diagnostics). */
  async timeGraph(model: Uint8Array | string, feeds: Record<string, FeedSpec>, runs: number) {
    const { adapter } = await probeCapabilities();
    const ort = await setupOrt(adapter);
    const bytes = typeof model === 'string' ? new Uint8Array(await (await fetch(model)).arrayBuffer()) : model;
    const session = await ort.InferenceSession.create(bytes, webgpuSessionOptions({ extra: { session: { disable_cpu_ep_fallback: '0' } } }));
    const tensors = Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, new ort.Tensor(f.type, f.data, f.dims)]));
    await session.run(tensors);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await session.run(tensors);
      times.push(performance.now() - t);
    }
    await session.release();
    return times;
  },
};
export type HarnessWorkerApi = typeof api;
Comlink.expose(api);
