// Page side of the runtime test harness: Playwright calls `window.harness.*` through page.evaluate.
// It drives the app's inference engine in the harness's worker (runtime-harness-inference.worker.ts:
// the app worker's interface plus test switches) and small test workers, and can edit the browser
// cache (OPFS) to simulate corruption and interrupted downloads.
import * as Comlink from 'comlink';
import { installErrorTransfer } from '../workers/error-transfer.ts';
import { wrapWorker, type WrappedWorker } from '../workers/wrap-worker.ts';
import type { HarnessInferenceApi, TunedAskRequest } from './runtime-harness-inference.worker.ts';
import type { AskEvent, AskRequest, ImageInput, LoadOptions, LoadProgress, ModelSource } from '../src/runtime/api-types.ts';
import type { FeedSpec, HarnessWorkerApi, PrefillSpec } from './runtime-harness.worker.ts';

type PlainFeeds = Record<string, { type: FeedSpec['type']; data: number[]; dims: number[] }>;

async function runGraph(guard: 'auto' | 'never', model: number[], feeds: PlainFeeds, output: string) {
  const worker = new Worker(new URL('./runtime-harness.worker.ts', import.meta.url), { type: 'module' });
  try {
    const api = Comlink.wrap<HarnessWorkerApi>(worker);
    const typed: Record<string, FeedSpec> = {};
    for (const [name, f] of Object.entries(feeds)) {
      const data = f.type === 'float32' ? Float32Array.from(f.data) : f.type === 'int32' ? Int32Array.from(f.data) : BigInt64Array.from(f.data.map(BigInt));
      typed[name] = { type: f.type, data, dims: f.dims };
    }
    const r = await api.runGraph(guard, Uint8Array.from(model), typed, output);
    return { capabilities: r.capabilities, data: Array.from(r.data) };
  } finally {
    worker.terminate();
  }
}

/** Prefills of a WebGPU decoder graph (bytes or an address) in one session, in its own worker: logits, time, GPU bytes. */
async function prefillRuns(model: number[] | string, specs: readonly PrefillSpec[]) {
  const worker = new Worker(new URL('./runtime-harness.worker.ts', import.meta.url), { type: 'module' });
  try {
    const r = await Comlink.wrap<HarnessWorkerApi>(worker).prefillRuns(typeof model === 'string' ? new URL(model, location.href).href : Uint8Array.from(model), specs);
    return { ...r, results: r.results.map((x) => ({ ...x, logits: Array.from(x.logits) })) };
  } finally {
    worker.terminate();
  }
}

async function timeGraph(model: number[] | string, feeds: PlainFeeds, runs: number) {
  const worker = new Worker(new URL('./runtime-harness.worker.ts', import.meta.url), { type: 'module' });
  try {
    const typed: Record<string, FeedSpec> = {};
    for (const [name, f] of Object.entries(feeds)) {
      const data = f.type === 'float32' ? Float32Array.from(f.data) : f.type === 'int32' ? Int32Array.from(f.data) : BigInt64Array.from(f.data.map(BigInt));
      typed[name] = { type: f.type, data, dims: f.dims };
    }
    return await Comlink.wrap<HarnessWorkerApi>(worker).timeGraph(typeof model === 'string' ? new URL(model, location.href).href : Uint8Array.from(model), typed, runs);
  } finally {
    worker.terminate();
  }
}

// ---- the inference worker ----

installErrorTransfer();

/** The harness's inference worker; its script URL names it "inference.worker" like the app's. */
function startInference(): WrappedWorker<HarnessInferenceApi> {
  return wrapWorker<HarnessInferenceApi>(new Worker(new URL('./runtime-harness-inference.worker.ts', import.meta.url), { type: 'module', name: 'inference' }));
}

let rt: ReturnType<typeof startInference> | undefined;
const need = () => {
  if (!rt) throw new Error('call harness.start() first');
  return rt.api;
};

/** An image as plain JSON from the test: RGBA bytes as a number array. */
interface PlainImage {
  width: number;
  height: number;
  rgba: number[];
}

type PlainVisual =
  | { kind: 'none' }
  | { kind: 'images'; images: PlainImage[]; keys?: string[] }
  | { kind: 'video'; frames: { image: PlainImage; timestamp: number; key?: string }[] };

async function toImage(p: PlainImage, bitmap: boolean): Promise<ImageInput> {
  const data = Uint8ClampedArray.from(p.rgba);
  if (!bitmap) return { width: p.width, height: p.height, data };
  return createImageBitmap(new ImageData(data, p.width, p.height), { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
}

function syntheticClip(count: number, width: number, height: number): AskRequest['visual'] {
  const frames = Array.from({ length: count }, (_, k) => {
    const data = new Uint8ClampedArray(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        data[i] = (x * 3 + k * 17) & 255;
        data[i + 1] = (y * 5 + ((x * y) % 13) * 7) & 255;
        data[i + 2] = ((x ^ y) + k * 29) & 255;
        data[i + 3] = 255;
      }
    }
    return { image: { width, height, data }, timestamp: k * 0.5, key: `bench-clip#${k}` };
  });
  return { kind: 'video', frames };
}

const harness = {
  runGraph,
  prefillRuns,
  timeGraph,

  start() {
    rt?.terminate();
    rt = startInference();
  },

  started: () => rt !== undefined,

  capabilities: () => need().capabilities(),

  async load(source: ModelSource, options: LoadOptions = {}) {
    const progress: LoadProgress[] = [];
    // When each stage began (wall clock, so a benchmark in Node can line it up with its own samples).
    const stages: { stage: LoadProgress['stage']; at: number }[] = [];
    let readyReported = () => {};
    const ready = new Promise<void>((r) => (readyReported = r));
    const model = await need().loadModel(source, options, Comlink.proxy((p: LoadProgress) => {
      progress.push(p);
      if (stages.at(-1)?.stage !== p.stage) stages.push({ stage: p.stage, at: Date.now() });
      if (p.stage === 'ready') readyReported();
    }));
    // Progress messages travel on their own port: wait for the last one ('ready') to arrive.
    await ready;
    return { model, progress, stages };
  },

  /** Starts a load and cancels it when the progress first reports `stage`; resolves with the error message. */
  async loadCancelAt(source: ModelSource, options: LoadOptions, stage: LoadProgress['stage']) {
    const api = need();
    let sent = false;
    const onProgress = Comlink.proxy((p: LoadProgress) => {
      if (p.stage === stage && !sent) {
        sent = true;
        void api.cancel();
      }
    });
    return api.loadModel(source, options, onProgress).then(
      () => ({ cancelled: sent, error: undefined }),
      (e: Error) => ({ cancelled: sent, error: e.message }),
    );
  },

  current: () => need().current(),

  /** Loads a folder picked through <input webkitdirectory> (files set by Playwright's setInputFiles). */
  async loadFromInput(selector: string, options: LoadOptions = {}) {
    const input = document.querySelector<HTMLInputElement>(selector);
    if (!input?.files?.length) throw new Error(`no files chosen in ${selector}`);
    return harness.load({ kind: 'files', files: [...input.files] }, options);
  },

  /**
   * Copies the files of an <input webkitdirectory> into an OPFS folder and loads that folder as a
   * FileSystemDirectoryHandle source (what showDirectoryPicker() returns; the picker itself needs a user).
   * The handle is the parent of the model folder, as when a user picks the folder that holds it.
   */
  async loadFromDirectoryCopy(selector: string, options: LoadOptions = {}) {
    const input = document.querySelector<HTMLInputElement>(selector);
    if (!input?.files?.length) throw new Error(`no files chosen in ${selector}`);
    const root = await navigator.storage.getDirectory();
    await root.removeEntry('picked', { recursive: true }).catch(() => {});
    const picked = await root.getDirectoryHandle('picked', { create: true });
    for (const file of input.files) {
      const parts = file.webkitRelativePath.split('/');
      let dir = picked;
      for (const seg of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(seg, { create: true });
      const w = await (await dir.getFileHandle(parts[parts.length - 1], { create: true })).createWritable();
      await w.write(file);
      await w.close();
    }
    return harness.load({ kind: 'directory', handle: picked }, options);
  },

  /**
   * Asks a question; `cancelAfter` cancels once that many tokens streamed. Returns the final event,
   * every streamed event, and the main thread's long tasks (ms) observed meanwhile.
   */
  async ask(question: string, visual: PlainVisual, o: { maxNewTokens?: number; cancelAfter?: number; cancelAtStage?: string; bitmaps?: boolean; returnLogits?: boolean; overlap?: boolean; forceTokens?: number[]; onEvent?: (e: AskEvent) => void; history?: AskRequest['history'] } = {}) {
    const api = need();
    let v: AskRequest['visual'] = { kind: 'none' };
    const transfer: Transferable[] = [];
    if (visual.kind === 'images') v = { kind: 'images', images: await Promise.all(visual.images.map((i) => toImage(i, Boolean(o.bitmaps)))), keys: visual.keys };
    if (visual.kind === 'video') {
      v = { kind: 'video', frames: await Promise.all(visual.frames.map(async (f) => ({ image: await toImage(f.image, Boolean(o.bitmaps)), timestamp: f.timestamp, key: f.key }))) };
    }
    if (v.kind === 'images') for (const i of v.images) if (i instanceof ImageBitmap) transfer.push(i);
    if (v.kind === 'video') for (const f of v.frames) if (f.image instanceof ImageBitmap) transfer.push(f.image);

    const longTasks: number[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) longTasks.push(e.duration);
    });
    observer.observe({ type: 'longtask' });
    const events: AskEvent[] = [];
    let tokens = 0;
    let cancelled = false;
    let doneReported = () => {};
    const doneEvent = new Promise<void>((r) => (doneReported = r));
    const onEvent = Comlink.proxy((e: AskEvent) => {
      events.push(e);
      o.onEvent?.(e);
      if (e.type === 'done') doneReported();
      if (e.type === 'token' && ++tokens === o.cancelAfter) void api.cancel();
      if (e.type === 'stage' && e.stage === o.cancelAtStage && !cancelled) {
        cancelled = true;
        void api.cancel();
      }
    });
    const request: TunedAskRequest = { question, visual: v, history: o.history, maxNewTokens: o.maxNewTokens, returnLogits: o.returnLogits, overlap: o.overlap, forceTokens: o.forceTokens };
    try {
      const done = await api.ask(Comlink.transfer(request, transfer), onEvent);
      // Events travel on their own port: wait for the 'done' event, the last one sent.
      await doneEvent;
      return { done: { ...done, logits: done.logits?.map((l) => Array.from(l)) }, events, longTasks };
    } finally {
      observer.disconnect();
    }
  },

  cancel: () => need().cancel(),
  clearCaches: (which?: { features?: boolean; prefix?: boolean }) => need().clearCaches(which),

  /** A synthetic keyed clip made in the page (no pixels cross from Node): `count` frames of w×h at 0.5 s steps. */
  async askClip(question: string, count: number, width: number, height: number, o: { maxNewTokens?: number; overlap?: boolean; reusePrefix?: boolean } = {}) {
    return need().ask({ question, visual: syntheticClip(count, width, height), maxNewTokens: o.maxNewTokens, overlap: o.overlap, reusePrefix: o.reusePrefix });
  },

  unload: () => need().unload(),
  /** GPU work counting in the inference worker (bench:dispatch). */
  countGpuWork: () => need().countGpuWork(),
  takeGpuCounts: () => need().takeGpuCounts(),
  list: () => need().listCachedModels(),
  remove: (id: string) => need().deleteCachedModel(id),
  storage: () => need().storageInfo(),

  // ---- OPFS edits (the cache's layout is molmo2-web/blobs/<sha256>[.part]) ----

  async clearCache() {
    const root = await navigator.storage.getDirectory();
    await root.removeEntry('molmo2-web', { recursive: true }).catch(() => {});
  },

  async blobNames(): Promise<string[]> {
    const root = await navigator.storage.getDirectory();
    const blobs = await (await root.getDirectoryHandle('molmo2-web')).getDirectoryHandle('blobs');
    const out: string[] = [];
    for await (const name of (blobs as unknown as { keys(): AsyncIterable<string> }).keys()) out.push(name);
    return out.sort();
  },

  /** Overwrites `count` bytes at `at` of a cached file (keeps its size). */
  async corruptBlob(sha: string, at = 0, count = 16) {
    const root = await navigator.storage.getDirectory();
    const blobs = await (await root.getDirectoryHandle('molmo2-web')).getDirectoryHandle('blobs');
    const w = await (await blobs.getFileHandle(sha)).createWritable({ keepExistingData: true });
    await w.seek(at);
    await w.write(new Uint8Array(count).fill(0xa5));
    await w.close();
  },

  /** Turns a complete cached file into an interrupted download holding its first `keep` bytes. */
  async truncateToPartial(sha: string, keep: number) {
    const root = await navigator.storage.getDirectory();
    const blobs = await (await root.getDirectoryHandle('molmo2-web')).getDirectoryHandle('blobs');
    const file = await (await blobs.getFileHandle(sha)).getFile();
    const head = new Uint8Array(await file.slice(0, keep).arrayBuffer());
    const w = await (await blobs.getFileHandle(`${sha}.part`, { create: true })).createWritable();
    await w.write(head);
    await w.close();
    await blobs.removeEntry(sha);
  },
};

declare global {
  interface Window {
    harness: typeof harness;
  }
}
window.harness = harness;
document.body.dataset.ready = 'true';
