// The pixel values of one vision run (a batch of items): made on the GPU when a preprocessor is given
// and succeeds, else on the CPU item by item. The CPU path yields to the event loop before each item,
// so a vision run that is in flight meanwhile (the previous batch) keeps going: that is what lets
// FeatureCache prepare the next batch while the current one runs.
import type { GpuPixelTensor } from './gpu-preprocess-inputs.ts';
import { runPooledIdx, type VisualItem } from './visual-plan.ts';
import type { ort } from './ort.ts';

/** GPU pixel values of the request's items `members` (undefined → CPU path). */
export type GpuPixelsFn = (members: number[]) => Promise<GpuPixelTensor | undefined>;

export interface PreparedBatch {
  /** Item indices of the request, in prompt order. */
  members: number[];
  crops: number;
  /** pixel_values [crops, patches, patchDim]: a GPU tensor (GPU path) or CPU values. */
  pixels: Float32Array | ort.Tensor;
  /** pooled_idx of the batch, offset into its crops (−1 = padding). */
  pooled: number[];
  path: 'gpu' | 'cpu';
  /** Milliseconds spent making the pixel values (waits for the event loop excluded). */
  ms: number;
  /** Frees a GPU tensor (after the vision run that reads it). */
  dispose(): void;
}

const channel = typeof MessageChannel !== 'undefined' ? new MessageChannel() : undefined;
const waiting: (() => void)[] = [];
if (channel) channel.port1.onmessage = () => waiting.shift()?.();

/** Lets queued tasks run (GPU callbacks of a vision run in flight); a message, as timers are clamped. */
export function nextTask(): Promise<void> {
  if (!channel) return new Promise((r) => setTimeout(r, 0));
  return new Promise((r) => {
    waiting.push(r);
    channel.port2.postMessage(null);
  });
}

export async function prepareBatch(items: VisualItem[], members: number[], patchesPerCrop: number, gpuPixels?: GpuPixelsFn): Promise<PreparedBatch> {
  const crops = members.reduce((n, i) => n + items[i].crops, 0);
  const pooled = runPooledIdx(items, members, patchesPerCrop);
  let ms = 0;
  if (gpuPixels) {
    const t = performance.now();
    let px: GpuPixelTensor | undefined;
    try {
      px = await gpuPixels(members);
    } catch (e) {
      console.warn(`GPU preprocessing failed, using the CPU path: ${(e as Error).message}`);
    }
    ms += performance.now() - t;
    if (px && px.numCrops === crops) {
      const tensor = px.tensor;
      return { members, crops, pixels: tensor, pooled, path: 'gpu', ms, dispose: () => tensor.dispose() };
    }
    px?.tensor.dispose();
  }
  const parts: Float32Array[] = [];
  for (const i of members) {
    await nextTask();
    const t = performance.now();
    parts.push(items[i].pixels());
    ms += performance.now() - t;
  }
  const t = performance.now();
  let pixels: Float32Array;
  if (parts.length === 1) {
    pixels = parts[0];
  } else {
    pixels = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      pixels.set(p, at);
      at += p.length;
    }
  }
  ms += performance.now() - t;
  return { members, crops, pixels, pooled, path: 'cpu', ms, dispose() {} };
}
