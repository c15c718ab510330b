// State of "Convert from the Hugging Face Hub": the form, the check before a conversion, its
// progress, and the unfinished conversions a reload or a cancel left (which resume). The conversion
// runs in its own worker (workers/convert.worker.ts), started after the service worker has been told
// which Hub hosts it may reach: the Hub the user named (and, for huggingface.co, the Hub's file hosts
// it redirects weight downloads to) and nothing else.
import * as Comlink from 'comlink';
import { create } from 'zustand';
import { startConvertWorker, type ConvertWorker, type HubConvertPlan, type HubConvertProgress, type HubConvertRequest, type HubConvertResult, type PendingConversion } from '../../workers/convert-api.ts';
import { allowModelHost } from '../security/service-worker.ts';
import { useModelStore } from './model-store.ts';

export const DEFAULT_HUB = 'https://huggingface.co';

/** The origins a conversion from `endpoint` contacts. */
export function hubHosts(endpoint: string): string[] {
  const u = new URL(endpoint);
  // huggingface.co answers weight files with a redirect to its storage hosts (*.hf.co).
  return u.host === 'huggingface.co' ? [u.origin, 'https://*.hf.co', 'https://*.huggingface.co'] : [u.origin];
}

export type ConvertStatus = 'idle' | 'checking' | 'checked' | 'converting' | 'done' | 'error';

interface ConvertState {
  status: ConvertStatus;
  plan?: HubConvertPlan;
  progress?: HubConvertProgress;
  result?: HubConvertResult;
  pending: PendingConversion[];
  error?: string;
  check(request: HubConvertRequest): Promise<void>;
  convert(request: HubConvertRequest): Promise<void>;
  cancel(): void;
  refreshPending(): Promise<void>;
  discard(id: string): Promise<void>;
}

let worker: { w: ConvertWorker; hosts: string } | undefined;

/** A conversion worker whose policy allows `hosts` (a fresh one when they change: a worker's policy is fixed at its start). */
async function workerFor(hosts: string[]): Promise<ConvertWorker['api']> {
  const key = hosts.join(' ');
  if (worker && worker.hosts === key) return worker.w.api;
  for (const h of hosts) {
    if (h !== location.origin && !(await allowModelHost(h))) {
      throw new Error(`This page can reach ${h} only while the app's service worker is active; reload the page and try again.`);
    }
  }
  worker?.w.terminate();
  const w = startConvertWorker((why) => {
    if (worker?.w !== w) return;
    worker = undefined;
    useConvertStore.setState({ status: 'error', error: `The conversion worker stopped unexpectedly (${why}). Start the conversion again to resume it.` });
  });
  worker = { w, hosts: key };
  return w.api;
}

const message = (e: unknown) => ((e as Error)?.message ?? String(e)).replace(/^Error: /, '');

export const useConvertStore = create<ConvertState>()((set, get) => ({
  status: 'idle',
  pending: [],

  async check(request) {
    set({ status: 'checking', plan: undefined, error: undefined, result: undefined });
    try {
      const api = await workerFor(hubHosts(request.endpoint));
      set({ status: 'checked', plan: await api.plan(request) });
    } catch (e) {
      set({ status: 'error', error: message(e) });
    }
  },

  async convert(request) {
    if (get().status === 'converting') return;
    set({ status: 'converting', progress: undefined, error: undefined, result: undefined });
    try {
      const api = await workerFor(hubHosts(request.endpoint));
      const result = await api.convert(request, Comlink.proxy((progress: HubConvertProgress) => set({ progress })));
      set({ status: 'done', result });
    } catch (e) {
      set({ status: 'error', error: message(e) });
    } finally {
      await get().refreshPending().catch(() => {});
      await useModelStore.getState().refreshCached().catch(() => {});
    }
  },

  cancel() {
    void worker?.w.api.cancel();
  },

  async refreshPending() {
    const api = worker?.w.api ?? (await workerFor([location.origin]));
    set({ pending: await api.pending() });
  },

  async discard(id) {
    const api = worker?.w.api ?? (await workerFor([location.origin]));
    await api.discard(id);
    await get().refreshPending();
    await useModelStore.getState().refreshCached().catch(() => {});
  },
}));
