// The page's one decode worker.
import * as Comlink from 'comlink';
import type { DecodeApi } from '../../../workers/decode-api.ts';
import { installErrorTransfer } from '../../../workers/error-transfer.ts';

let api: Comlink.Remote<DecodeApi> | null = null;

export function decoder(): Comlink.Remote<DecodeApi> {
  installErrorTransfer();
  if (!api) api = Comlink.wrap<DecodeApi>(new Worker(new URL('../../../workers/decode.worker.ts', import.meta.url), { type: 'module' }));
  return api;
}
