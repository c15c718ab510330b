// onnxruntime-web set-up for the native WebGPU execution provider (the C++ WebGPU EP compiled to wasm;
// the default import would load the legacy JSEP kernels). Two builds of it, with the same API:
//
// - `jspi` (WebAssembly JS Promise Integration, needs `WebAssembly.Suspending`: Chromium ≥ 137). Its
//   external data may be a Blob that onnxruntime keeps and, while the session initialises, reads one
//   tensor's byte range at a time (`blob.slice(a, b).stream()`) into a reused buffer and uploads to the
//   GPU: the worker never holds a graph's weights whole in JS memory.
// - `asyncify` (every WebGPU browser): a Blob external data file is read whole while its session is
//   created, so the JS peak there is one graph's weights.
//
// The build is chosen at the first `setupOrt()` (a dynamic import, so only one of them is loaded) and
// assigned to `ort` once; the other runtime modules use `ort.Tensor` / `ort.InferenceSession` at call
// time, after the model loader has awaited `setupOrt()`. The wasm files are served from this app's own
// origin through Vite's `?url` imports — never from a CDN — so the app works offline once loaded.
import type * as OrtModule from 'onnxruntime-web/webgpu';
import asyncifyWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import jspiWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.jspi.wasm?url';

import { installOrtLogCapture } from './ort-log.ts';

type Ort = typeof OrtModule;
export type OrtBuild = 'jspi' | 'asyncify';

const notReady = new Proxy({} as Ort, {
  get(_target, key) {
    throw new Error(`onnxruntime is not set up yet (ort.${String(key)} used before setupOrt() resolved)`);
  },
});

/** The onnxruntime-web module of the chosen build; assigned once by `setupOrt()`. */
export let ort: Ort = notReady;
// `ort.Tensor`, `ort.InferenceSession.SessionOptions`, … as types, as with `import * as ort` (a
// namespace of types only, so it merges with the variable above).
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace ort {
  type Tensor = OrtModule.Tensor;
  namespace Tensor {
    type Type = OrtModule.Tensor.Type;
    type DataLocation = OrtModule.Tensor.DataLocation;
    type DataType = OrtModule.Tensor.DataType;
  }
  type InferenceSession = OrtModule.InferenceSession;
  namespace InferenceSession {
    type SessionOptions = OrtModule.InferenceSession.SessionOptions;
    type RunOptions = OrtModule.InferenceSession.RunOptions;
    type FeedsType = OrtModule.InferenceSession.FeedsType;
    type FetchesType = OrtModule.InferenceSession.FetchesType;
    type ReturnType = OrtModule.InferenceSession.ReturnType;
  }
}
export type { InferenceSession, Tensor } from 'onnxruntime-web/webgpu';

/** True where this browser can run the JSPI build. */
export function jspiSupported(): boolean {
  return typeof (WebAssembly as { Suspending?: unknown }).Suspending === 'function';
}

let build: OrtBuild | undefined;
let loading: Promise<Ort> | undefined;

/** Which build `setupOrt()` loaded (undefined before). */
export function ortBuild(): OrtBuild | undefined {
  return build;
}

async function load(): Promise<Ort> {
  // Before the wasm starts: it binds console.error then.
  installOrtLogCapture();
  const chosen: OrtBuild = jspiSupported() ? 'jspi' : 'asyncify';
  const mod: Ort = chosen === 'jspi' ? await import('onnxruntime-web/jspi') : await import('onnxruntime-web/webgpu');
  mod.env.wasm.wasmPaths = { wasm: chosen === 'jspi' ? jspiWasmUrl : asyncifyWasmUrl };
  // Single-threaded wasm: the GPU does the work, and threads would need cross-origin isolation.
  mod.env.wasm.numThreads = 1;
  mod.env.wasm.proxy = false;
  mod.env.logLevel = 'error';
  ort = mod;
  build = chosen;
  return mod;
}

/**
 * Loads and configures onnxruntime once (the JSPI build where the browser has JSPI, else the asyncify
 * one); `adapter` is the one the capabilities were probed on.
 */
export async function setupOrt(adapter?: GPUAdapter): Promise<Ort> {
  loading ??= load();
  const mod = await loading;
  if (adapter && !mod.env.webgpu.adapter) mod.env.webgpu.adapter = adapter;
  return mod;
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
