// Typed interface of the conversion worker (comlink): converts a Molmo2 checkpoint on the Hugging
// Face Hub into a web model in this browser's storage (src/runtime/convert/). The page starts it only
// after telling the service worker which Hub hosts it may reach, so its policy allows them and
// nothing else. Callbacks must be wrapped with Comlink.proxy().
import type { HubConvertPlan, HubConvertProgress, HubConvertRequest, HubConvertResult } from '../src/runtime/convert/hub-conversion.ts';
import type { PendingConversion } from '../src/runtime/convert/staging.ts';
import { wrapWorker, type WrappedWorker } from './wrap-worker.ts';

export type { HubConvertPlan, HubConvertProgress, HubConvertRequest, HubConvertResult, HubConvertStage } from '../src/runtime/convert/hub-conversion.ts';
export type { PendingConversion } from '../src/runtime/convert/staging.ts';

export interface ConvertApi {
  /** Checks the checkpoint (config, tensors, chat template) and the storage; converts nothing. */
  plan(request: HubConvertRequest): Promise<HubConvertPlan>;
  /** Converts (resuming an interrupted run of the same request); the model lands in the model cache. */
  convert(request: HubConvertRequest, onProgress?: (p: HubConvertProgress) => void): Promise<HubConvertResult>;
  /** Stops the conversion in progress; what is written stays for a resume. */
  cancel(): void;
  /** Unfinished conversions in this browser's storage. */
  pending(): Promise<PendingConversion[]>;
  /** Deletes an unfinished conversion's files. */
  discard(id: string): Promise<void>;
}

export type ConvertWorker = WrappedWorker<ConvertApi>;

export function startConvertWorker(onCrash?: (message: string) => void): ConvertWorker {
  return wrapWorker<ConvertApi>(new Worker(new URL('./convert.worker.ts', import.meta.url), { type: 'module', name: 'convert' }), onCrash);
}
