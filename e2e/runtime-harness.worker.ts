// Test worker: runs one small graph on the WebGPU EP, with or without the subgroup guard. One worker
// per configuration, because onnxruntime creates its GPU device once per worker.
import * as Comlink from 'comlink';
import { probeCapabilities } from '../src/runtime/capabilities.ts';
import { setupOrt, webgpuSessionOptions } from '../src/runtime/ort.ts';

export interface FeedSpec {
  type: 'float32' | 'int32' | 'int64';
  data: Float32Array | Int32Array | BigInt64Array;
  dims: number[];
}

const api = {
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
