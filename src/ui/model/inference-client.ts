// The page's one inference worker, started on first use and shared by the model panel and the ask box.
import { requestPersistentStorage, startInferenceWorker, type InferenceWorker } from '../../../workers/inference-api.ts';

let worker: InferenceWorker | undefined;

export function inference(): InferenceWorker['api'] {
  worker ??= startInferenceWorker();
  return worker.api;
}

export { requestPersistentStorage };
