// The conversion worker: Hub checkpoint → web model in OPFS, off the page's thread (see convert-api.ts).
import * as Comlink from 'comlink';
import { convertFromHub, planHubConversion } from '../src/runtime/convert/hub-conversion.ts';
import { pendingConversions, removeConversion } from '../src/runtime/convert/staging.ts';
import { WorkerError } from './worker-error.ts';
import type { ConvertApi } from './convert-api.ts';
import { installErrorTransfer } from './error-transfer.ts';

installErrorTransfer();
let running: AbortController | undefined;

const api: ConvertApi = {
  plan: (request) => planHubConversion(request),
  async convert(request, onProgress) {
    if (running) throw new WorkerError('busy', 'a conversion is already running');
    running = new AbortController();
    try {
      return await convertFromHub(request, onProgress, running.signal);
    } finally {
      running = undefined;
    }
  },
  cancel: () => running?.abort(new WorkerError('cancelled', 'conversion stopped')),
  pending: () => pendingConversions(),
  discard: (id) => removeConversion(id),
};

Comlink.expose(api);
