// FeatureCache's batching without a GPU: a fake vision session and device record the order of work, so
// the tests see the next batch's pixel values made while a run is in flight (never more than one batch
// ahead), the GPU path tried first with the CPU path on any failure, and progress after each run.
import { beforeAll, describe, expect, it } from 'vitest';
import type { VisualItem } from './inputs.ts';
import { setupOrt, type ort } from './ort.ts';
import { prepareBatch } from './vision-batch.ts';
import { FeatureCache, type FeatureContext } from './vision-features.ts';

// The runtime's `ort` is assigned when onnxruntime is set up (the model loader does it first).
beforeAll(async () => {
  await setupOrt();
});

const PATCHES = 4;
const PATCH_DIM = 3;

(globalThis as { GPUBufferUsage?: object }).GPUBufferUsage ??= { STORAGE: 128, COPY_SRC: 4, COPY_DST: 8 };

function item(i: number, log: string[], crops = 1): VisualItem {
  watched = log;
  return {
    key: `clip#${i}`,
    width: 8,
    height: 8,
    crops,
    pooledIdx: Int32Array.of(0, 1, -1, 2),
    rows: 2,
    pixels: () => {
      log.push(`pixels ${i}`);
      return new Float32Array(crops * PATCHES * PATCH_DIM).fill(i);
    },
  };
}

/** A vision session whose runs finish only when the test lets them (run k resolves on release(k)). */
function fakeVision(log: string[]) {
  const releases: (() => void)[] = [];
  const fed: { pixels: unknown; pooled: bigint[] }[] = [];
  const session = {
    inputMetadata: [{ name: 'pixel_values', isTensor: true, shape: ['crops', PATCHES, PATCH_DIM] }],
    run: (feeds: Record<string, ort.Tensor>) => {
      const k = fed.length;
      fed.push({ pixels: feeds.pixel_values, pooled: Array.from(feeds.pooled_idx.data as BigInt64Array) });
      log.push(`run ${k} start`);
      return new Promise((resolve) => {
        releases[k] = () => {
          log.push(`run ${k} end`);
          resolve({ image_features: { gpuBuffer: { run: k }, dispose() {} } });
        };
      });
    },
  };
  return { session: session as unknown as ort.InferenceSession, releases, fed };
}

/** A device whose buffers are counted; with `outOfMemory` set, its error scope reports what a full GPU reports. */
function fakeDevice(o: { outOfMemory?: boolean } = {}) {
  const live = new Set<object>();
  const device = {
    createCommandEncoder: () => ({ copyBufferToBuffer() {}, finish: () => ({}) }),
    createBuffer: ({ size }: { size: number }) => {
      const b = { size, destroy: () => live.delete(b) };
      live.add(b);
      return b;
    },
    pushErrorScope() {},
    popErrorScope: async function (this: { scopes: number }) {
      // The out-of-memory scope is pushed first, so it is popped second.
      return o.outOfMemory && ++this.scopes % 2 === 0 ? { message: 'Not enough memory left.' } : null;
    },
    scopes: 0,
    queue: { submit() {} },
  };
  return { device: device as unknown as GPUDevice, live };
}

function context(vision: ort.InferenceSession, extra: Partial<FeatureContext> = {}): FeatureContext {
  return { vision, device: fakeDevice().device, hidden: 2, maxCropsPerRun: 2, gpuIdle: async () => {}, isCancelled: () => false, ...extra };
}

/**
 * Lets the pipeline run until it waits on a vision run: it only waits on those and on message ticks,
 * so it is idle once a series of event-loop turns passes with nothing new in the log (no wall-clock wait).
 */
let watched: string[] = [];
async function settle() {
  const turn = () => new Promise((r) => setImmediate(r));
  for (let quiet = 0, seen = -1; quiet < 20; quiet = watched.length === seen ? quiet + 1 : 0) {
    seen = watched.length;
    await turn();
  }
}

describe('FeatureCache batches', () => {
  it('makes the next batch while the current run is in flight, at most one batch ahead', async () => {
    const log: string[] = [];
    const items = [0, 1, 2, 3, 4, 5].map((i) => item(i, log));
    const { session, releases, fed } = fakeVision(log);
    const progress: [number, number][] = [];
    const pending = new FeatureCache().features(context(session, { onProgress: (d, t) => progress.push([d, t]) }), 'm', items, 4);
    await settle();
    // Run 0 is in flight; batch 1 (items 2, 3) is ready; batch 2 is not started.
    expect(log).toEqual(['pixels 0', 'pixels 1', 'run 0 start', 'pixels 2', 'pixels 3']);
    releases[0]();
    await settle();
    expect(log.slice(5)).toEqual(['run 0 end', 'run 1 start', 'pixels 4', 'pixels 5']);
    releases[1]();
    await settle();
    releases[2]();
    const f = await pending;
    expect(f).toBeDefined();
    expect(progress).toEqual([[2, 6], [4, 6], [6, 6]]);
    expect(f!.stats).toMatchObject({ encoded: 6, hits: 0, path: 'cpu' });
    expect(f!.stats.visionStageMs).toBeGreaterThan(0);
    // Pooling indices are offset into each batch's own crops.
    expect(fed[1].pooled).toEqual([0n, 1n, -1n, 2n, 4n, 5n, -1n, 6n]);
  });

  it('without overlap, makes each batch only after the previous run', async () => {
    const log: string[] = [];
    const items = [0, 1, 2, 3].map((i) => item(i, log));
    const { session, releases } = fakeVision(log);
    const pending = new FeatureCache().features(context(session, { overlap: false }), 'm', items, 4);
    await settle();
    expect(log).toEqual(['pixels 0', 'pixels 1', 'run 0 start']);
    releases[0]();
    await settle();
    releases[1]();
    await pending;
    expect(log).toEqual(['pixels 0', 'pixels 1', 'run 0 start', 'run 0 end', 'pixels 2', 'pixels 3', 'run 1 start', 'run 1 end']);
  });

  it('uses GPU pixel values when given, the CPU path for a batch where they fail, and says which ran', async () => {
    const log: string[] = [];
    const items = [0, 1, 2, 3].map((i) => item(i, log));
    const { session, releases, fed } = fakeVision(log);
    const disposed: number[][] = [];
    const gpuPixels = async (members: number[]) => {
      if (members[0] === 2) throw new Error('device lost');
      const tensor = { dims: [members.length, PATCHES, PATCH_DIM], dispose: () => disposed.push(members) } as unknown as ort.Tensor;
      return { tensor, numCrops: members.length, methods: [] };
    };
    const pending = new FeatureCache().features(context(session, { gpuPixels }), 'm', items, 4);
    await settle();
    releases[0]();
    await settle();
    releases[1]();
    const f = await pending;
    expect(log.filter((l) => l.startsWith('pixels'))).toEqual(['pixels 2', 'pixels 3']);
    expect(fed[0].pixels).toMatchObject({ dims: [2, PATCHES, PATCH_DIM] });
    expect((fed[1].pixels as ort.Tensor).data).toEqual(Float32Array.of(...Array(12).fill(2), ...Array(12).fill(3)));
    // The GPU tensor is freed once its run is over.
    expect(disposed).toEqual([[0, 1]]);
    expect(f!.stats.path).toBe('mixed');
  });

  it('encodes only items not cached, and counts cached ones as done', async () => {
    const log: string[] = [];
    const cache = new FeatureCache();
    const first = fakeVision(log);
    const a = cache.features(context(first.session), 'm', [item(0, log), item(1, log)], 4);
    await settle();
    first.releases[0]();
    await a;
    const second = fakeVision(log);
    const progress: [number, number][] = [];
    const b = cache.features(context(second.session, { onProgress: (d, t) => progress.push([d, t]) }), 'm', [item(0, log), item(1, log), item(2, log)], 4);
    await settle();
    second.releases[0]();
    const f = await b;
    expect(second.fed).toHaveLength(1);
    expect(progress).toEqual([[2, 3], [3, 3]]);
    expect(f!.stats).toMatchObject({ encoded: 1, hits: 2, path: 'cpu' });
  });
});

describe('FeatureCache allocation', () => {
  it('a GPU out of memory for the feature buffers fails the request plainly, frees them and caches nothing', async () => {
    const log: string[] = [];
    const cache = new FeatureCache();
    const { device, live } = fakeDevice({ outOfMemory: true });
    const vision = fakeVision(log);
    const pending = cache.features(context(vision.session, { device }), 'm', [item(0, log), item(1, log)], 4);
    await settle();
    vision.releases[0]();
    await expect(pending).rejects.toThrow('vision features of 2 items: out of memory: Not enough memory left.');
    expect(live.size).toBe(0);
    expect(cache.size).toBe(0);
  });
});

describe('prepareBatch', () => {
  it('falls back to the CPU when the GPU gives no tensor or one of the wrong size', async () => {
    const log: string[] = [];
    const items = [item(0, log, 2), item(1, log)];
    const disposed: string[] = [];
    const wrong = { tensor: { dispose: () => disposed.push('wrong') } as unknown as ort.Tensor, numCrops: 1, methods: [] };
    for (const gpu of [async () => undefined, async () => wrong]) {
      const b = await prepareBatch(items, [0, 1], PATCHES, gpu);
      expect(b.path).toBe('cpu');
      expect(b.crops).toBe(3);
      expect((b.pixels as Float32Array).length).toBe(3 * PATCHES * PATCH_DIM);
      expect(b.pooled).toEqual([0, 1, -1, 2, 8, 9, -1, 10]);
    }
    expect(disposed).toEqual(['wrong']);
  });
});
