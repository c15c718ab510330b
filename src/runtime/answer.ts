// One answer on a loaded model: limits first (before any pixel is read), then generate (prefix reuse,
// feature cache, vision, prefill, decode) raced against a lost device, and the failures a user can act
// on turned into coded plain-language errors (also sent as the last event).
import { errorCode, errorMessage, toWorkerError, WorkerError } from '../../workers/worker-error.ts';
import type { AskEvent, AskRequest } from './api-types.ts';
import type { DeviceLossWatch } from './device-loss.ts';
import { generate, type DoneEvent } from './generate.ts';
import { GpuLostError, GpuMemoryError, gpuLostMessage, isMemoryError, memoryErrorMessage } from './gpu-faults.ts';
import { gpuItemPixels } from './gpu-preprocess-inputs.ts';
import { InputError, planInputs, shapeOf } from './inputs.ts';
import { checkAskLimits } from './limits.ts';
import { geometryOf, type ModelHandle } from './model-loader.ts';
import { notify, type Callback } from './notify.ts';
import { DEFAULT_MAX_NEW_TOKENS } from '../molmo2/config.ts';

/** A request refused by the limits before any work (the message gives the numbers and what to do). */
export class LimitError extends WorkerError {
  constructor(message: string) {
    super('limit', message);
  }
}

/** Switches for tests and measurements; the app's worker never sets them. */
export interface AnswerTuning {
  /** Also return the logits that chose each token. */
  returnLogits?: boolean;
  /** false: make each vision batch's pixel values only after the previous run (no pipelining). */
  overlap?: boolean;
  /** false: prefill from scratch even when the cached prefix matches (the features cache still serves). */
  reusePrefix?: boolean;
  /** Teacher forcing: the tokens fed to the decode steps (see GenerateOptions.forceTokens). */
  forceTokens?: readonly number[];
}

export interface AnswerSession {
  /** True once a cancel was requested or the device was lost. */
  isCancelled: () => boolean;
  loss: DeviceLossWatch;
  onEvent?: Callback<AskEvent>;
  tuning?: AnswerTuning;
}

/** Answers `req`; a lost device rejects with 'gpu-lost' (the caller drops the model). */
export async function answer(m: ModelHandle, req: AskRequest, s: AnswerSession): Promise<DoneEvent> {
  const race = s.loss.race();
  try {
    notify(s.onEvent, { type: 'stage', stage: 'preprocess' });
    const startedAt = performance.now();
    const maxNewTokens = req.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new InputError(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
    // Prompt and limits first: a request that cannot fit is refused before any pixel is read.
    const planned = planInputs(req, { config: m.config, settings: m.settings, tokenizer: m.tokenizer, chatTemplate: m.chatTemplate });
    const check = checkAskLimits(shapeOf(req), m.limits, planned.prompt.inputIds.length);
    if (!check.ok) throw new LimitError(check.message ?? 'This question is too large for the loaded model.');
    const tuning = s.tuning ?? {};
    // A lost device can leave a run waiting forever: the loss settles the answer instead.
    const done = await Promise.race([
      race.promise,
      generate(
        {
          runner: m.runner,
          decode: (ids) => m.tokenizer.decode(ids),
          eosId: m.config.tokens.eos,
          cache: m.cacheState,
          features: (items, poolSize, onProgress) =>
            m.features.features(
              {
                vision: m.vision,
                device: m.device,
                hidden: m.config.text.hiddenSize,
                maxCropsPerRun: m.cropsPerRun,
                gpuIdle: () => m.device.queue.onSubmittedWorkDone(),
                isCancelled: s.isCancelled,
                gpuPixels: m.gpuPre ? (members) => gpuItemPixels(m.gpuPre, req, members, m.settings, geometryOf(m.config)) : undefined,
                onProgress,
                overlap: tuning.overlap,
              },
              m.featureScope,
              items,
              poolSize,
            ),
        },
        planned,
        {
          maxNewTokens,
          startedAt,
          preprocessMs: performance.now() - startedAt,
          isCancelled: s.isCancelled,
          onEvent: (e) => notify(s.onEvent, e),
          reusePrefix: tuning.reusePrefix,
          returnLogits: tuning.returnLogits,
          forceTokens: tuning.forceTokens,
        },
      ),
    ]);
    notify(s.onEvent, { ...done, logits: undefined });
    return done;
  } catch (e) {
    const error = await explainAnswerError(m, s.loss, e);
    notify(s.onEvent, { type: 'error', code: error.code, message: error.message });
    throw error;
  } finally {
    race.stop();
  }
}

/** The coded error of a failed answer; after running out of memory the decoder cache is dropped. */
async function explainAnswerError(m: ModelHandle, loss: DeviceLossWatch, e: unknown): Promise<WorkerError> {
  const code = errorCode(e);
  if (code !== 'limit' && code !== 'bad-input') await loss.settle(m.device);
  if (loss.reason) return e instanceof GpuLostError ? e : new GpuLostError(gpuLostMessage(loss.reason));
  const message = errorMessage(e);
  if (code !== 'limit' && isMemoryError(message)) {
    m.forgetPrefix();
    return new GpuMemoryError(memoryErrorMessage('ask', message));
  }
  return toWorkerError(e);
}
