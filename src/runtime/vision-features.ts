// The decoder's image_features for a request, computed as little as possible: each frame/image with
// a page-given key keeps its feature rows in a GPU buffer (LRU, bounded in bytes), so a question over
// the same or an overlapping range runs the vision encoder only for items not seen before. Missing
// items are preprocessed and encoded in runs that fit the adapter's buffers; the rows are then
// gathered in prompt order with GPU copies — features never come back to the CPU.
import { VISION_INPUTS, VISION_OUTPUTS } from '../molmo2/onnx/io.ts';
import type { VisualItem } from './inputs.ts';
import { ByteLru } from './lru.ts';
import { ort } from './ort.ts';

/** Default bound of the feature cache: ~300 Molmo2-4B video frames (81 rows × 2560 × 4 bytes each). */
export const DEFAULT_FEATURE_CACHE_BYTES = 256 * 2 ** 20;

export interface FeatureStats {
  /** Items run through the vision encoder. */
  encoded: number;
  /** Items whose features came from the cache. */
  hits: number;
  /** Milliseconds spent on pixel preprocessing (CPU). */
  preprocessMs: number;
  /** Milliseconds of vision runs and copies, GPU work included. */
  visionMs: number;
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
}

interface Slice {
  buffer: GPUBuffer;
  offset: number;
  bytes: number;
}

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** pixel_values + pooled_idx → image_features, left on the GPU. */
export async function runVision(vision: ort.InferenceSession, pixels: Float32Array, crops: number, pooledIdx: ArrayLike<number>, poolSize: number): Promise<ort.Tensor> {
  const patchCount = patchesPerCrop(vision);
  const pooled = new BigInt64Array(pooledIdx.length);
  for (let i = 0; i < pooled.length; i++) pooled[i] = BigInt(pooledIdx[i]);
  const out = await vision.run({
    [VISION_INPUTS.pixelValues]: new ort.Tensor('float32', pixels, [crops, patchCount, pixels.length / crops / patchCount]),
    [VISION_INPUTS.pooledIdx]: new ort.Tensor('int64', pooled, [pooledIdx.length / poolSize, poolSize]),
  });
  return out[VISION_OUTPUTS.imageFeatures];
}

/** Consecutive runs of items whose crops fit one vision run (an item is never split). */
export function visionBatches(items: { crops: number }[], maxCrops: number): number[][] {
  const batches: number[][] = [];
  let cur: number[] = [];
  let crops = 0;
  items.forEach((it, i) => {
    if (cur.length > 0 && crops + it.crops > maxCrops) {
      batches.push(cur);
      cur = [];
      crops = 0;
    }
    cur.push(i);
    crops += it.crops;
  });
  if (cur.length) batches.push(cur);
  return batches;
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
    const stats: FeatureStats = { encoded: 0, hits: 0, preprocessMs: 0, visionMs: 0 };
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
    try {
      for (const batch of visionBatches(missing.map((i) => items[i]), ctx.maxCropsPerRun)) {
        if (ctx.isCancelled()) return undefined;
        const members = batch.map((b) => missing[b]);
        const t = performance.now();
        const crops = members.reduce((n, i) => n + items[i].crops, 0);
        const parts = members.map((i) => items[i].pixels());
        const patchValues = parts.reduce((n, p) => n + p.length, 0) / crops;
        const pixels = new Float32Array(crops * patchValues);
        const pooled: number[] = [];
        let cropAt = 0;
        members.forEach((i, k) => {
          pixels.set(parts[k], cropAt * patchValues);
          const offset = cropAt * patchesPerCrop(ctx.vision);
          for (const v of items[i].pooledIdx) pooled.push(v >= 0 ? v + offset : -1);
          cropAt += items[i].crops;
        });
        stats.preprocessMs += performance.now() - t;
        const out = await runVision(ctx.vision, pixels, crops, pooled, poolSize);
        outputs.push(out);
        stats.encoded += members.length;
        let offset = 0;
        for (const i of members) {
          const bytes = items[i].rows * rowBytes;
          sources[i] = { buffer: out.gpuBuffer as GPUBuffer, offset, bytes };
          offset += bytes;
        }
      }
      const totalRows = items.reduce((n, it) => n + it.rows, 0);
      const encoder = ctx.device.createCommandEncoder();
      // Keep the new rows of keyed items (each in its own buffer, so eviction frees exactly one item).
      for (const i of missing) {
        if (!keys[i]) continue;
        const s = sources[i]!;
        const own = ctx.device.createBuffer({ size: s.bytes, usage: STORAGE() });
        encoder.copyBufferToBuffer(s.buffer, s.offset, own, 0, s.bytes);
        this.lru.set(keys[i]!, own, s.bytes, used);
      }
      let tensor: ort.Tensor;
      let release: () => void;
      if (outputs.length === 1 && missing.length === items.length) {
        // One run produced every row in order: hand its output over as it is.
        tensor = outputs.pop()!;
        release = () => tensor.dispose();
      } else {
        const buffer = ctx.device.createBuffer({ size: Math.max(4, totalRows * rowBytes), usage: STORAGE() });
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
      stats.visionMs = performance.now() - started - stats.preprocessMs;
      return { tensor, stats, release };
    } finally {
      // Run outputs are copied from by commands submitted above (or never used after a cancel).
      for (const o of outputs) o.dispose();
    }
  }
}

function patchesPerCrop(vision: ort.InferenceSession): number {
  const meta = vision.inputMetadata.find((m) => m.name === VISION_INPUTS.pixelValues);
  return meta && meta.isTensor && typeof meta.shape[1] === 'number' ? meta.shape[1] : 729;
}
