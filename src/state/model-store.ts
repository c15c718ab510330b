// Model panel state: device capabilities, the models on offer (bundled with the app, cached in the
// browser), the load in progress and the loaded model.
import * as Comlink from 'comlink';
import { create } from 'zustand';
import type { CachedModel, Capabilities, LoadedModel, LoadOptions, LoadProgress, ModelSource, StorageInfo } from '../../workers/inference-api.ts';
import { inference, onInferenceCrash, requestPersistentStorage, restartInference } from '../ui/model/inference-client.ts';
import { allowModelHost } from '../security/service-worker.ts';
import { modelOrigin } from '../security/csp.ts';
import type { BundledModel } from '../molmo2/manifest.ts';
import { appUrl } from '../app-url.ts';

export type ModelStatus = 'starting' | 'idle' | 'loading' | 'ready' | 'error';

export interface ModelState {
  status: ModelStatus;
  capabilities?: Capabilities;
  bundled: BundledModel[];
  cached: CachedModel[];
  storage?: StorageInfo;
  progress?: LoadProgress;
  loaded?: LoadedModel;
  /** What is being loaded, for the progress heading. */
  loadingLabel?: string;
  error?: string;
  init(): Promise<void>;
  load(source: ModelSource, label: string, options?: LoadOptions): Promise<void>;
  cancelLoad(): void;
  removeCached(id: string): Promise<void>;
  refreshCached(): Promise<void>;
}

async function fetchBundled(): Promise<BundledModel[]> {
  try {
    const res = await fetch(appUrl('models/index.json'), { cache: 'no-store' });
    if (!res.ok || !(res.headers.get('Content-Type') ?? '').includes('json')) return [];
    return (await res.json()) as BundledModel[];
  } catch {
    return [];
  }
}

/**
 * A model on another host: the service worker adds that host to the policy of workers it serves, and
 * a fresh inference worker picks it up. Without a service worker only this origin can be reached.
 */
async function allowSourceHost(source: ModelSource): Promise<void> {
  if (source.kind !== 'url') return;
  const origin = modelOrigin(source.url, location.href);
  if (!origin) throw new Error(`“${source.url}” is not an http(s) address.`);
  if (origin === location.origin) return;
  if (!(await allowModelHost(origin))) {
    throw new Error(`Models can only be loaded from ${origin} when the app's service worker is active; reload the page and try again.`);
  }
  restartInference();
}

const message = (e: unknown) => ((e as Error)?.message ?? String(e)).replace(/^Error: /, '');

export const useModelStore = create<ModelState>()((set, get) => ({
  status: 'starting',
  bundled: [],
  cached: [],

  async init() {
    const api = inference();
    const [capabilities, bundled] = await Promise.all([api.capabilities(), fetchBundled()]);
    set({ capabilities, bundled, status: get().status === 'starting' ? 'idle' : get().status });
    await get().refreshCached();
  },

  async refreshCached() {
    const api = inference();
    const [cached, storage] = await Promise.all([api.listCachedModels(), api.storageInfo()]);
    set({ cached, storage: { ...storage, persisted: get().storage?.persisted } });
  },

  async load(source, label, options) {
    if (get().status === 'loading') return;
    set({ status: 'loading', loadingLabel: label, progress: undefined, error: undefined });
    // Only the page may ask for persistent storage; ask before the download fills the cache.
    const persisted = await requestPersistentStorage();
    set((s) => ({ storage: s.storage ? { ...s.storage, persisted } : { usage: 0, quota: 0, persisted } }));
    try {
      await allowSourceHost(source);
      const loaded = await inference().loadModel(source, options, Comlink.proxy((progress: LoadProgress) => set({ progress })));
      set({ status: 'ready', loaded });
    } catch (e) {
      // A failed load leaves no model: the worker releases the previous one before loading.
      set({ status: 'error', error: message(e), loaded: undefined });
    } finally {
      await get().refreshCached().catch(() => {});
    }
  },

  cancelLoad() {
    void inference().cancel();
  },

  async removeCached(id) {
    await inference().deleteCachedModel(id);
    await get().refreshCached();
  },
}));

// A failed worker takes its model with it: say so; the next load starts a fresh worker.
onInferenceCrash((error) => useModelStore.setState({ status: 'error', error, loaded: undefined, progress: undefined }));
