// onnxruntime-web set-up for the native WebGPU execution provider. The `/webgpu` build is the C++
// WebGPU EP compiled to wasm (the default import would load the legacy JSEP kernels). The wasm file is
// served from this app's own origin through Vite's `?url` import — never from a CDN — so the app works
// offline once loaded.
import * as ort from 'onnxruntime-web/webgpu';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';

import { installOrtLogCapture } from './ort-log.ts';

export { ort };
export type { InferenceSession, Tensor } from 'onnxruntime-web/webgpu';

let configured = false;

/** Configures onnxruntime once; `adapter` is the one the capabilities were probed on. */
export function setupOrt(adapter?: GPUAdapter): typeof ort {
  if (!configured) {
    // Before the wasm starts: it binds console.error then.
    installOrtLogCapture();
    ort.env.wasm.wasmPaths = { wasm: wasmUrl };
    // Single-threaded wasm: the GPU does the work, and threads would need cross-origin isolation.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = 'error';
    configured = true;
  }
  if (adapter && !ort.env.webgpu.adapter) ort.env.webgpu.adapter = adapter;
  return ort;
}

/** Session options shared by every graph: WebGPU only, no silent CPU fallback. */
export function webgpuSessionOptions(extra: ort.InferenceSession.SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['webgpu'],
    graphOptimizationLevel: 'all',
    ...extra,
    extra: { ...(extra.extra ?? {}), session: { disable_cpu_ep_fallback: '1', ...((extra.extra as { session?: object })?.session ?? {}) } },
  };
}

/** The GPUDevice onnxruntime created (available once a WebGPU session exists). */
export async function ortDevice(): Promise<GPUDevice> {
  return (await ort.env.webgpu.device) as GPUDevice;
}
