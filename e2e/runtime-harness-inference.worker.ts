// The harness's inference worker: the app's engine (src/runtime/engine.ts) behind the same interface
// as workers/inference.worker.ts, plus the switches only tests and measurements use (logits, vision
// pipelining, prefix reuse, teacher forcing), which the app's worker does not offer.
import * as Comlink from 'comlink';
import type { AnswerTuning } from '../src/runtime/answer.ts';
import { InferenceEngine } from '../src/runtime/engine.ts';
import { gpuCounts, installGpuCounters, resetGpuCounts, type GpuCounts } from '../src/runtime/gpu-counters.ts';
import type { AskEvent, AskRequest, DoneEvent, InferenceApi } from '../workers/inference-api.ts';
import { engineApi } from '../workers/engine-api.ts';
import { installErrorTransfer } from '../workers/error-transfer.ts';

export type TunedAskRequest = AskRequest & AnswerTuning;

export interface HarnessInferenceApi extends InferenceApi {
  ask(request: TunedAskRequest, onEvent?: (e: AskEvent) => void): Promise<DoneEvent>;
  /** Starts counting this worker's GPU work (bench:dispatch); false without WebGPU. */
  countGpuWork(): boolean;
  /** The GPU work counted since the last call (then the count restarts). */
  takeGpuCounts(): GpuCounts;
}

installErrorTransfer();
const engine = new InferenceEngine();

const api: HarnessInferenceApi = {
  ...engineApi(engine),
  countGpuWork: () => installGpuCounters(),
  takeGpuCounts: () => {
    const counts = gpuCounts();
    resetGpuCounts();
    return counts;
  },
  ask: ({ returnLogits, overlap, reusePrefix, forceTokens, ...request }, onEvent) => engine.ask(request, onEvent, { returnLogits, overlap, reusePrefix, forceTokens }),
};

Comlink.expose(api);
