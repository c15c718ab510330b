// Records, inside the inference worker, the Blob reads that onnxruntime-web's own code makes while a
// model loads: ranges (`blob.slice`, the JSPI build's per-tensor reads) and whole reads
// (`blob.arrayBuffer`, the asyncify build). Shared by e2e/runtime-lean-load.spec.ts and
// tools/bench-full-size.ts.
import type { Worker } from 'playwright-core';

export interface OrtReads {
  /** Byte sizes of the ranges onnxruntime sliced off the weight Blobs. */
  slices: number[];
  /** Byte sizes of the Blobs onnxruntime read whole. */
  wholeReads: number[];
}

/** Starts recording; with `hideJspi` the worker loses WebAssembly.Suspending, so onnxruntime takes its asyncify build. */
export async function recordOrtReads(worker: Worker, hideJspi: boolean): Promise<void> {
  // tsx (the benchmarks) compiles named functions with esbuild's `__name` helper, which the worker lacks.
  await worker.evaluate('globalThis.__name ??= (f) => f');
  await worker.evaluate((hide) => {
    const byOrt = () => /onnxruntime-web|ort[.\w-]*\.m?js/.test(new Error().stack ?? '');
    const reads = { slices: [] as number[], wholeReads: [] as number[] };
    (globalThis as { __ortReads?: typeof reads }).__ortReads = reads;
    const proto = Blob.prototype;
    const slice = proto.slice;
    proto.slice = function (this: Blob, start?: number, end?: number, type?: string) {
      const part = slice.call(this, start, end, type);
      if (byOrt()) reads.slices.push(part.size);
      return part;
    };
    const arrayBuffer = proto.arrayBuffer;
    proto.arrayBuffer = function (this: Blob) {
      if (byOrt()) reads.wholeReads.push(this.size);
      return arrayBuffer.call(this);
    };
    // onnxruntime is set up at the first load: without WebAssembly.Suspending it takes the asyncify build.
    if (hide) Reflect.deleteProperty(WebAssembly, 'Suspending');
  }, hideJspi);
}

/** What was recorded since recordOrtReads (or since clearOrtReads). */
export const ortReadsOf = (worker: Worker): Promise<OrtReads> => worker.evaluate(() => (globalThis as unknown as { __ortReads: OrtReads }).__ortReads);

/** Forgets what was recorded so far (e.g. before a second load in the same worker). */
export const clearOrtReads = (worker: Worker): Promise<void> =>
  worker.evaluate(() => {
    const r = (globalThis as unknown as { __ortReads: OrtReads }).__ortReads;
    r.slices.length = 0;
    r.wholeReads.length = 0;
  });
