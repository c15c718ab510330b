// The inference worker: onnxruntime-web (native WebGPU EP), model download and cache, preprocessing
// and generation run here so the page stays responsive. The page talks to it through comlink
// (see inference-api.ts); errors cross with their code (worker-error.ts).
import * as Comlink from 'comlink';
import { InferenceEngine } from '../src/runtime/engine.ts';
import type { InferenceApi } from './inference-api.ts';
import { installErrorTransfer } from './worker-error.ts';

installErrorTransfer();
const engine = new InferenceEngine();

const api: InferenceApi = {
  capabilities: () => engine.capabilities(),
  loadModel: (source, options, onProgress) => engine.loadModel(source, options, onProgress),
  ask: (request, onEvent) => engine.ask(request, onEvent),
  clearCaches: (which) => engine.clearCaches(which),
  cancel: () => engine.cancel(),
  unload: () => engine.unload(),
  current: () => engine.current(),
  listCachedModels: () => engine.listCachedModels(),
  deleteCachedModel: (id) => engine.deleteCachedModel(id),
  storageInfo: () => engine.storageInfo(),
};

Comlink.expose(api);
