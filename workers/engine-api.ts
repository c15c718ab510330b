// The worker-side InferenceApi over an engine: what the app's inference worker exposes, and what the
// test harness's worker extends with its measurement switches.
import type { InferenceEngine } from '../src/runtime/engine.ts';
import type { InferenceApi } from './inference-api.ts';

export function engineApi(engine: InferenceEngine): InferenceApi {
  return {
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
}
