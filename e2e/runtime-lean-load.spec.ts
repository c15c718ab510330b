// Lean loading: which onnxruntime-web build the inference worker runs, and how it reads the weights.
// With JSPI (Chromium ≥ 137) onnxruntime keeps each external-data Blob and reads one tensor's byte range
// at a time (`blob.slice(a, b).stream()`) while the session initialises, so the worker never holds a
// weight file whole; without JSPI (asyncify build, older browsers) it reads each file whole. The
// worker's Blob reads are recorded (only those made by onnxruntime's code, by their stack) while the
// tiny model loads through the real loader (download to the OPFS cache, Blobs of the cached files).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page, type Worker } from '@playwright/test';
import type { Manifest } from '../src/molmo2/manifest.ts';
import { ensureRuntimeModel, MODEL_DIR } from './runtime-model.ts';
import { ask, load, openHarness } from './runtime-page.ts';

let manifest: Manifest;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  await ensureRuntimeModel();
  manifest = JSON.parse(readFileSync(join(MODEL_DIR, 'manifest.json'), 'utf8'));
});

test.describe.configure({ timeout: 300_000 });

interface Reads {
  slices: number[];
  wholeReads: number[];
}

/** Records, in the inference worker, the Blob reads onnxruntime's code makes; optionally hides JSPI. */
async function recordReads(page: Page, hideJspi: boolean): Promise<Worker> {
  const worker = page.workers().find((w) => w.url().includes('inference.worker'))!;
  expect(worker).toBeTruthy();
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
    if (hide) Reflect.deleteProperty(WebAssembly, 'Suspending');
  }, hideJspi);
  return worker;
}

const readsOf = (worker: Worker) => worker.evaluate(() => (globalThis as unknown as { __ortReads: Reads }).__ortReads);

/** Sizes of the external-data files of the variant the worker loaded. */
function externalDataSizes(dtype: string, target: string): number[] {
  const v = manifest.variants.find((x) => x.dtype === dtype && x.target === target)!;
  const paths = new Set([...v.vision.externalData, ...v.decoder.externalData]);
  return manifest.files.filter((f) => paths.has(f.path)).map((f) => f.bytes);
}

const stats = (xs: number[]) => ({ count: xs.length, largest: Math.max(0, ...xs), total: xs.reduce((s, x) => s + x, 0) });

test('with JSPI the worker runs the JSPI build, which streams the weights to the GPU tensor by tensor', async ({ page }) => {
  await openHarness(page);
  const worker = await recordReads(page, false);
  expect(await worker.evaluate(() => typeof (WebAssembly as { Suspending?: unknown }).Suspending)).toBe('function');
  const { model } = await load(page);
  expect(model.ortBuild).toBe('jspi');
  const reads = await readsOf(worker);
  const files = externalDataSizes(model.dtype, model.target);
  const largestFile = Math.max(...files);
  const total = files.reduce((s, x) => s + x, 0);
  // No file read whole; many ranges, each smaller than the largest file (which holds many tensors),
  // together covering the weights.
  expect(reads.wholeReads).toEqual([]);
  expect(reads.slices.length).toBeGreaterThan(files.length * 4);
  expect(Math.max(...reads.slices)).toBeLessThan(largestFile);
  expect(stats(reads.slices).total).toBeGreaterThanOrEqual(total * 0.9);
  test.info().annotations.push({
    type: 'jspi reads',
    description: JSON.stringify({ slices: stats(reads.slices), files: { count: files.length, largest: largestFile, total }, timings: model.timings }),
  });
  const a = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2 });
  expect(a.done.tokens.length).toBeGreaterThan(0);
});

test('without JSPI the worker falls back to the asyncify build, which reads each weight file whole, and answers', async ({ page }) => {
  await openHarness(page);
  const worker = await recordReads(page, true);
  const { model } = await load(page);
  expect(model.ortBuild).toBe('asyncify');
  const reads = await readsOf(worker);
  const files = externalDataSizes(model.dtype, model.target);
  expect(reads.slices).toEqual([]);
  expect(Math.max(...reads.wholeReads)).toBe(Math.max(...files));
  test.info().annotations.push({
    type: 'asyncify reads',
    description: JSON.stringify({ wholeReads: stats(reads.wholeReads), timings: model.timings }),
  });
  const a = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2 });
  expect(a.done.tokens.length).toBeGreaterThan(0);
});
