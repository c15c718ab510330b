// The decoder's image_features for a request, computed as little as possible: each frame/image with
// a page-given key keeps its feature rows in a GPU buffer (LRU, bounded in bytes), so a question over
// the same or an overlapping range runs the vision encoder only for items not seen before. Missing
// items are preprocessed and encoded in runs that fit the adapter's buffers; the rows are then
// gathered in prompt order with GPU copies — features never come back to the CPU. While one run is on
// the GPU the next batch's pixel values are made (at most one batch ahead, so memory stays bounded).
import { VISION_INPUTS, VISION_OUTPUTS } from '../molmo2/onnx/io.ts';
import { allocChecked } from './gpu-faults.ts';
import { visionBatches, type VisualItem } from './visual-plan.ts';
import { ByteLru } from './lru.ts';
import { ort } from './ort.ts';
import { prepareBatch, type GpuPixelsFn, type PreparedBatch } from './vision-batch.ts';

/** Default bound of the feature cache: ~300 Molmo2-4B video frames (81 rows × 2560 × 4 bytes each). */
export const DEFAULT_FEATURE_CACHE_BYTES = 256 * 2 ** 20;

export interface FeatureStats {
  /** Items run through the vision encoder. */
  encoded: number;
  /** Items whose features came from the cache. */
  hits: number;
  /** Milliseconds spent making pixel values, including the part hidden behind vision runs. */
  preprocessMs: number;
  /** Milliseconds of vision runs and copies, GPU work included: visionStageMs minus the waits for pixel values. */
  visionMs: number;
  /** Wall time from the first pixel to the last feature row (preprocessing and vision overlapped). */
  visionStageMs: number;
  /** Where the pixel values were made: 'none' when every item was cached. */
  path: 'gpu' | 'cpu' | 'mixed' | 'none';
}

export interface Features {
  /** [rows, hidden] float32 on the GPU, in prompt order. */
  tensor: ort.Tensor;
  stats: FeatureStats;
  /** Frees the assembled tensor (cached rows stay cached). */
  release(): void;
}

export interface FeatureContext {
  vision: ort.InferenceSession;
  device: GPUDevice;
  /** Feature width (the decoder's hidden size). */
  hidden: number;
  /** Crops one vision run may take (limits.maxCropsPerVisionRun). */
  maxCropsPerRun: number;
  /** Waits for the GPU, so timings include the work. */
  gpuIdle: () => Promise<void>;
  isCancelled: () => boolean;
  /** GPU pixel values of the request's items (item i = image / frame i); undefined or an error → CPU. */
  gpuPixels?: GpuPixelsFn;
  /** Items (frames or images) done of all, after the cache lookup and after each vision run. */
  onProgress?: (done: number, total: number) => void;
  /** Prepare the next batch while the current one runs (default true; false for measurements). */
  overlap?: boolean;
}

interface Slice {
  buffer: GPUBuffer;
  offset: number;
  bytes: number;
}

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** pixel_values (CPU values, or a GPU tensor [crops, patches, patchDim]) + pooled_idx → image_features, left on the GPU. */
export async function runVision(vision: ort.InferenceSession, pixels: Float32Array | ort.Tensor, crops: number, pooledIdx: ArrayLike<number>, poolSize: number): Promise<ort.Tensor> {
  const patchCount = patchesPerCrop(vision);
  const pooled = new BigInt64Array(pooledIdx.length);
  for (let i = 0; i < pooled.length; i++) pooled[i] = BigInt(pooledIdx[i]);
  const input = pixels instanceof Float32Array ? new ort.Tensor('float32', pixels, [crops, patchCount, pixels.length / crops / patchCount]) : pixels;
  if (input.dims[0] !== crops) throw new Error(`internal: pixel values of ${input.dims[0]} crops for a vision run of ${crops}`);
  const out = await vision.run({
    [VISION_INPUTS.pixelValues]: input,
    [VISION_INPUTS.pooledIdx]: new ort.Tensor('int64', pooled, [pooledIdx.length / poolSize, poolSize]),
  });
  return out[VISION_OUTPUTS.imageFeatures];
}

export class FeatureCache {
  private readonly lru: ByteLru<GPUBuffer>;

  constructor(maxBytes = DEFAULT_FEATURE_CACHE_BYTES) {
    this.lru = new ByteLru<GPUBuffer>(maxBytes, (b) => b.destroy());
  }

  get size(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.bytes;
  }

  clear(): void {
    this.lru.clear();
  }

  /**
   * The features of `items` in order. `scope` names the model and dtype, so that keys of another model
   * never match; items without a key are always encoded.
   */
  async features(ctx: FeatureContext, scope: string, items: VisualItem[], poolSize: number): Promise<Features | undefined> {
    const stats: FeatureStats = { encoded: 0, hits: 0, preprocessMs: 0, visionMs: 0, visionStageMs: 0, path: 'none' };
    const started = performance.now();
    const rowBytes = ctx.hidden * 4;
    const keys = items.map((it) => (it.key ? `${scope}|${it.key}|${it.width}x${it.height}` : undefined));
    const sources: (Slice | undefined)[] = items.map((it, i) => {
      const buf = keys[i] ? this.lru.get(keys[i]!) : undefined;
      if (!buf) return undefined;
      stats.hits++;
      return { buffer: buf, offset: 0, bytes: it.rows * rowBytes };
    });
    const missing = items.map((_, i) => i).filter((i) => !sources[i]);
    const outputs: ort.Tensor[] = [];
    const used = new Set(keys.filter((k): k is string => Boolean(k)));
    const batches = visionBatches(missing.map((i) => items[i]), ctx.maxCropsPerRun).map((b) => b.map((k) => missing[k]));
    const patches = patchesPerCrop(ctx.vision);
    const prepare = (k: number) => {
      const p = prepareBatch(items, batches[k], patches, ctx.gpuPixels);
      p.catch(() => {}); // awaited below; a batch prepared ahead may be dropped after an error
      return p;
    };
    const paths = new Set<'gpu' | 'cpu'>();
    let waited = 0;
    let done = stats.hits;
    if (done > 0) ctx.onProgress?.(done, items.length);
    let ahead: Promise<PreparedBatch> | undefined = batches.length ? prepare(0) : undefined;
    try {
      for (let k = 0; k < batches.length; k++) {
        const t = performance.now();
        const batch = await ahead!;
        ahead = undefined;
        waited += performance.now() - t;
        stats.preprocessMs += batch.ms;
        paths.add(batch.path);
        try {
          if (ctx.isCancelled()) return undefined;
          const run = runVision(ctx.vision, batch.pixels, batch.crops, batch.pooled, poolSize);
          // At most one batch ahead: made while this run is on the GPU.
          if (ctx.overlap !== false && k + 1 < batches.length) ahead = prepare(k + 1);
          const out = await run;
          outputs.push(out);
          let offset = 0;
          for (const i of batch.members) {
            const bytes = items[i].rows * rowBytes;
            sources[i] = { buffer: out.gpuBuffer as GPUBuffer, offset, bytes };
            offset += bytes;
          }
        } finally {
          batch.dispose();
        }
        if (!ahead && k + 1 < batches.length) ahead = prepare(k + 1);
        stats.encoded += batch.members.length;
        done += batch.members.length;
        ctx.onProgress?.(done, items.length);
      }
      const totalRows = items.reduce((n, it) => n + it.rows, 0);
      const kept = missing.filter((i) => keys[i]);
      // One run produced every row in order: its output is handed over as it is, nothing is gathered.
      const asIs = outputs.length === 1 && missing.length === items.length;
      // A GPU out of memory hands back an unusable buffer and says so only through an error scope;
      // copying into it would give the decoder garbage, so the allocations are checked first.
      const made = await allocChecked(ctx.device, () => ({
        own: kept.map((i) => ctx.device.createBuffer({ label: 'molmo2 vision features (cached)', size: sources[i]!.bytes, usage: STORAGE() })),
        gather: asIs ? undefined : ctx.device.createBuffer({ label: 'molmo2 vision features', size: Math.max(4, totalRows * rowBytes), usage: STORAGE() }),
      }));
      if (made.error) {
        for (const b of made.value.own) b.destroy();
        made.value.gather?.destroy();
        throw new Error(`vision features of ${items.length} item${items.length === 1 ? '' : 's'}: ${made.error}`);
      }
      const encoder = ctx.device.createCommandEncoder();
      // Keep the new rows of keyed items (each in its own buffer, so eviction frees exactly one item).
      kept.forEach((i, k) => {
        const s = sources[i]!;
        const own = made.value.own[k];
        encoder.copyBufferToBuffer(s.buffer, s.offset, own, 0, s.bytes);
        this.lru.set(keys[i]!, own, s.bytes, used);
      });
      let tensor: ort.Tensor;
      let release: () => void;
      if (asIs) {
        tensor = outputs.pop()!;
        release = () => tensor.dispose();
      } else {
        const buffer = made.value.gather!;
        let at = 0;
        for (const s of sources) {
          encoder.copyBufferToBuffer(s!.buffer, s!.offset, buffer, at, s!.bytes);
          at += s!.bytes;
        }
        tensor = ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: [totalRows, ctx.hidden] });
        release = () => buffer.destroy();
      }
      ctx.device.queue.submit([encoder.finish()]);
      await ctx.gpuIdle();
      stats.visionStageMs = performance.now() - started;
      stats.visionMs = stats.visionStageMs - waited;
      stats.path = paths.size === 0 ? 'none' : paths.size === 2 ? 'mixed' : [...paths][0];
      return { tensor, stats, release };
    } finally {
      // Run outputs are copied from by commands submitted above (or never used after a cancel).
      for (const o of outputs) o.dispose();
      void ahead?.then((b) => b.dispose(), () => {});
    }
  }
}

function patchesPerCrop(vision: ort.InferenceSession): number {
  const meta = vision.inputMetadata.find((m) => m.name === VISION_INPUTS.pixelValues);
  return meta && meta.isTensor && typeof meta.shape[1] === 'number' ? meta.shape[1] : 729;
}
