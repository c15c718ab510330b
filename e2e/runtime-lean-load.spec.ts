// Lean loading: which onnxruntime-web build the inference worker runs, and how it reads the weights.
// With JSPI (Chromium ≥ 137) onnxruntime keeps each external-data Blob and reads one tensor's byte range
// at a time (`blob.slice(a, b).stream()`) while the session initialises, so the worker never holds a
// weight file whole; without JSPI (asyncify build, older browsers) it reads each file whole. The
// worker's Blob reads are recorded (only those made by onnxruntime's code, by their stack) while the
// tiny model loads through the real loader (download to the OPFS cache, Blobs of the cached files).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page, type Worker } from '@playwright/test';
import type { Manifest } from '../src/molmo2/manifest.ts';
import { clearOrtReads, ortReadsOf, recordOrtReads } from './ort-reads.ts';
import { convertTestModel, ensureRuntimeModel, MODEL_DIR } from './runtime-model.ts';
import { ask, load, openHarness } from './runtime-page.ts';

let manifest: Manifest;

// The same weights converted with 9.5 MiB external-data files: the tiny q4 decoder's 18.3 MB of weights
// span two files, as a full-size model's span several at the 1 GiB default. (Below 9.1 MB the int4
// embedding table itself would be split, which changes the graph; above, the graph is the same.)
const CHUNKED = 'e2e-lean-chunked';
const CHUNKED_DIR = join(MODEL_DIR, '..', CHUNKED);
let chunked: Manifest;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  const parts = await ensureRuntimeModel();
  manifest = JSON.parse(readFileSync(join(MODEL_DIR, 'manifest.json'), 'utf8'));
  await convertTestModel(CHUNKED_DIR, {
    ...parts,
    name: 'Molmo2 e2e tiny, split external data (random weights)',
    source: { repo: 'molmo2-web/e2e-lean-chunked', revision: 'seed-5' },
    convert: { dtypes: ['q4'], targets: ['webgpu'], maxChunkBytes: 9.5 * 1024 * 1024 },
  });
  chunked = JSON.parse(readFileSync(join(CHUNKED_DIR, 'manifest.json'), 'utf8'));
});

test.afterAll(() => rmSync(CHUNKED_DIR, { recursive: true, force: true }));

test.describe.configure({ timeout: 300_000 });

/** The inference worker of the harness page, recording onnxruntime's Blob reads; optionally without JSPI. */
async function recordReads(page: Page, hideJspi: boolean): Promise<Worker> {
  const worker = page.workers().find((w) => w.url().includes('inference.worker'))!;
  expect(worker).toBeTruthy();
  await recordOrtReads(worker, hideJspi);
  return worker;
}

/** Sizes of the external-data files of the variant the worker loaded. */
function externalDataSizes(m: Manifest, dtype: string, target: string): number[] {
  const v = m.variants.find((x) => x.dtype === dtype && x.target === target)!;
  const paths = new Set([...v.vision.externalData, ...v.decoder.externalData]);
  return m.files.filter((f) => paths.has(f.path)).map((f) => f.bytes);
}

const stats = (xs: number[]) => ({ count: xs.length, largest: Math.max(0, ...xs), total: xs.reduce((s, x) => s + x, 0) });

test('with JSPI the worker runs the JSPI build, which streams the weights to the GPU tensor by tensor', async ({ page }) => {
  await openHarness(page);
  const worker = await recordReads(page, false);
  expect(await worker.evaluate(() => typeof (WebAssembly as { Suspending?: unknown }).Suspending)).toBe('function');
  const { model } = await load(page, { dtype: 'q4', target: 'webgpu' });
  expect(model.ortBuild).toBe('jspi');
  const reads = await ortReadsOf(worker);
  const files = externalDataSizes(manifest, model.dtype, model.target);
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
  const a = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 3, returnLogits: true });
  expect(a.done.tokens.length).toBe(3);

  // A decoder graph whose weights span several files loads the same way and answers as the one-file graph.
  const v = chunked.variants.find((x) => x.dtype === 'q4' && x.target === 'webgpu')!;
  expect(v.decoder.externalData.length).toBeGreaterThanOrEqual(2);
  await clearOrtReads(worker);
  const split = await load(page, { dtype: 'q4', target: 'webgpu' }, `/models/${CHUNKED}/`);
  expect(split.model.ortBuild).toBe('jspi');
  const splitReads = await ortReadsOf(worker);
  expect(splitReads.wholeReads).toEqual([]);
  expect(stats(splitReads.slices).total).toBeGreaterThanOrEqual(externalDataSizes(chunked, 'q4', 'webgpu').reduce((s, x) => s + x, 0) * 0.9);
  const b = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 3, returnLogits: true });
  expect(b.done.tokens).toEqual(a.done.tokens);
  expect(b.done.logits).toEqual(a.done.logits);
});

test('without JSPI the worker falls back to the asyncify build, which reads each weight file whole, and answers', async ({ page }) => {
  await openHarness(page);
  const worker = await recordReads(page, true);
  const { model } = await load(page);
  expect(model.ortBuild).toBe('asyncify');
  const reads = await ortReadsOf(worker);
  const files = externalDataSizes(manifest, model.dtype, model.target);
  expect(reads.slices).toEqual([]);
  expect(Math.max(...reads.wholeReads)).toBe(Math.max(...files));
  test.info().annotations.push({
    type: 'asyncify reads',
    description: JSON.stringify({ wholeReads: stats(reads.wholeReads), timings: model.timings }),
  });
  const a = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2 });
  expect(a.done.tokens.length).toBeGreaterThan(0);
});
