// The inference worker: onnxruntime-web (native WebGPU EP), model download and cache, preprocessing
// and generation run here so the page stays responsive. The page talks to it through comlink
// (see inference-api.ts); errors cross with their code (worker-error.ts).
import * as Comlink from 'comlink';
import { InferenceEngine } from '../src/runtime/engine.ts';
import { engineApi } from './engine-api.ts';
import { installErrorTransfer } from './error-transfer.ts';

installErrorTransfer();
const engine = new InferenceEngine();

Comlink.expose(engineApi(engine));
