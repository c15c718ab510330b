// Converting a model from the Hugging Face Hub in the browser, through the model panel: a local Hub
// server on 127.0.0.1 (tools/lib/hub-server.ts: the Hub's resolve layout, Range requests, CORS, a 302
// for weight files as the Hub does, faults on demand) serves the e2e test model's checkpoint. The
// browser's files must equal the Node converter's (e2e/runtime-model.ts converts the same checkpoint
// for the other runtime tests), the model must load and answer, a dropped connection and a reload in
// the middle must resume, and a wrong id or a gated repository must say so plainly.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import type { Manifest } from '../src/molmo2/manifest.ts';
import { headerLength, parseHeader } from '../src/molmo2/safetensors.ts';
import { HubServer } from '../tools/lib/hub-server.ts';
import { ensureRuntimeModel, MODEL_DIR, ROOT, writeTestCheckpoint } from './runtime-model.ts';

const REPO = 'molmo2-web/e2e-tiny';
const GATED = 'molmo2-web/e2e-gated';
const COMMIT = 'c0ffee0000000000000000000000000000000001';
const SHARD = 'model-00001-of-00001.safetensors';
const WORK = join(ROOT, '.cache', 'e2e-hub-convert', String(process.pid));

let hub: HubServer;
/** Where the embedding table's and the LM head's bytes lie in the shard (the decoder writes the LM head last). */
let embedding: { start: number; end: number };
let lmHead: { start: number; end: number };
let nodeManifest: Manifest;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  const parts = await ensureRuntimeModel();
  nodeManifest = JSON.parse(await readFile(join(MODEL_DIR, 'manifest.json'), 'utf8')) as Manifest;
  const ckpt = join(WORK, 'checkpoint');
  await mkdir(WORK, { recursive: true });
  await writeTestCheckpoint(ckpt, parts);
  const bytes = new Uint8Array(await readFile(join(ckpt, SHARD)));
  const header = parseHeader(bytes.subarray(0, 8 + headerLength(bytes)));
  const e = header.tensors.get('model.transformer.wte.embedding')!;
  embedding = { start: header.dataStart + e.begin, end: header.dataStart + e.end };
  const h = header.tensors.get('lm_head.weight')!;
  lmHead = { start: header.dataStart + h.begin, end: header.dataStart + h.end };
  hub = new HubServer({
    [REPO]: { dir: ckpt, commit: COMMIT, redirectWeights: true },
    [GATED]: { dir: ckpt, token: 'hf_secret' },
  });
  await hub.start();
});

test.afterAll(async () => {
  await hub?.stop();
  await rm(WORK, { recursive: true, force: true });
});

async function openConvert(page: Page) {
  await page.goto('/');
  // Another origin is reached only through the service worker's per-worker policy.
  await page.waitForFunction(() => Boolean(navigator.serviceWorker?.controller));
  const panel = page.getByTestId('hub-convert');
  await panel.locator('summary').first().click();
  await panel.getByText('Hub address and access token').click();
  await panel.getByLabel('Hub address').fill(hub.url);
  return panel;
}

/** The manifests of the models in the browser's model cache. */
function cachedManifests(page: Page): Promise<Manifest[]> {
  return page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const models = await (await root.getDirectoryHandle('molmo2-web')).getDirectoryHandle('models');
    const out: Manifest[] = [];
    for await (const [, h] of (models as unknown as { entries(): AsyncIterable<[string, FileSystemFileHandle]> }).entries()) {
      out.push((JSON.parse(await (await h.getFile()).text()) as { manifest: Manifest }).manifest);
    }
    return out;
  });
}

/** Every file the browser wrote has the size and SHA-256 of the Node converter's file of that path. */
function expectSameFiles(browser: Manifest) {
  const node = new Map(nodeManifest.files.map((f) => [f.path, f]));
  expect(browser.variants.map((v) => `${v.dtype}/${v.target}`)).toEqual(['q4/webgpu']);
  expect(browser.files.length).toBeGreaterThan(6);
  for (const f of browser.files) expect({ path: f.path, bytes: f.bytes, sha256: f.sha256 }).toEqual({ path: f.path, bytes: node.get(f.path)?.bytes, sha256: node.get(f.path)?.sha256 });
  // Graphs and weights of both parts are there.
  const paths = browser.files.map((f) => f.path);
  for (const p of ['onnx/webgpu/vision_q4.onnx', 'onnx/webgpu/vision_q4.onnx_data', 'onnx/webgpu/decoder_q4.onnx', 'onnx/webgpu/decoder_q4.onnx_data', 'tokenizer.json', 'config.json']) expect(paths).toContain(p);
}

test('a Hub checkpoint converts in the browser to the Node converter’s files through a dropped connection, then loads and answers', async ({ page }) => {
  test.setTimeout(480_000);
  // The connection breaks once in the middle of the embedding table.
  hub.addFault({ file: SHARD, covering: embedding.start + 8192, dropAfter: 100_000, times: 1 });
  const panel = await openConvert(page);
  await expect(panel.getByTestId('convert-privacy')).toContainText(`contacts only ${hub.url.replace('http://', '')}`);
  await panel.getByLabel('Hub repository').fill(REPO);
  await panel.getByLabel('Weights').selectOption('q4');
  await panel.getByRole('button', { name: 'Check' }).click();
  const plan = panel.getByTestId('convert-plan');
  await expect(plan).toContainText(`${REPO} @ ${COMMIT.slice(0, 12)}`);
  await expect(plan).toContainText('(random weights)');
  await expect(plan).toContainText(/Reads [\d.]+ MB from the Hub and writes about [\d.]+ MB \(q4\)/);
  // What it is and whether this GPU can hold it, measured before any weight is read.
  await expect(plan.getByTestId('convert-card')).toContainText(/M parameters/);
  await expect(plan.getByTestId('convert-gpu')).toContainText(/It will need about \d+ MiB of GPU memory, and this GPU allocated it\./);
  const requestsBefore = hub.requests.length;
  // Every request of the page and its workers while converting: this origin and the named Hub only.
  const contacted = new Set<string>();
  const onRequest = (r: { url(): string }) => contacted.add(new URL(r.url()).origin);
  page.context().on('request', onRequest);
  await plan.getByRole('button', { name: 'Convert in this browser' }).click();
  await expect(panel.getByTestId('convert-progress')).toBeVisible();
  await expect(panel.getByTestId('convert-done')).toBeVisible({ timeout: 300_000 });
  page.context().off('request', onRequest);
  const appOrigin = new URL(page.url()).origin;
  expect([...contacted].filter((o) => o !== appOrigin && o !== hub.url)).toEqual([]);
  expect(contacted.has(hub.url)).toBe(true);

  // Every weight read was a Range request on the pinned commit, answered through the Hub's redirect.
  const reads = hub.requests.slice(requestsBefore).filter((r) => r.path.endsWith(SHARD));
  expect(reads.length).toBeGreaterThan(10);
  expect(reads.every((r) => r.range !== undefined && /^bytes=\d+-\d+$/.test(r.range))).toBe(true);
  const redirects = reads.filter((r) => r.status === 302);
  expect(redirects.every((r) => r.path.includes(`/resolve/${COMMIT}/`))).toBe(true);
  // The Hub limits requests to its resolve URLs: the shard's download address is asked once and reused.
  expect(redirects.length).toBeLessThanOrEqual(2);
  expect(reads.filter((r) => r.path.startsWith('/cdn/')).length).toBeGreaterThan(10);
  // The broken response, and the request that resumed it from the byte reached.
  const dropped = reads.find((r) => r.status === 206 && r.bodyBytes === 100_000 && Number(/bytes=(\d+)/.exec(r.range!)![1]) >= embedding.start);
  expect(dropped).toBeDefined();
  const droppedStart = Number(/bytes=(\d+)/.exec(dropped!.range!)![1]);
  expect(reads.some((r) => r.status === 206 && Number(/bytes=(\d+)/.exec(r.range!)![1]) === droppedStart + 100_000)).toBe(true);

  const [manifest] = await cachedManifests(page);
  expect(manifest.source).toEqual({ repo: REPO, revision: COMMIT });
  expectSameFiles(manifest);

  // The model is in the cache list, and loads and answers.
  const modelPanel = page.getByTestId('model-panel');
  await expect(modelPanel.getByTestId('cached-model')).toHaveCount(1);
  await panel.getByRole('button', { name: /^Load / }).click();
  await expect(modelPanel).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });
  await expect(modelPanel.getByTestId('loaded-model')).toContainText('q4: int4 decoder');
  const box = page.getByTestId('ask-box');
  await box.getByLabel('Question').fill('Say something.');
  await box.getByRole('button', { name: 'Ask' }).click();
  await expect(box.getByTestId('answer')).not.toBeEmpty({ timeout: 240_000 });
  if ((await box.getAttribute('data-status')) === 'running') await box.getByRole('button', { name: 'Stop' }).click();
  await expect(box).toHaveAttribute('data-status', /cancelled|done/, { timeout: 120_000 });
});

test('a conversion interrupted by a reload resumes from what was written and gives the same files', async ({ page }) => {
  test.setTimeout(480_000);
  // The connection goes silent in the middle of the LM head, the last weight the conversion writes:
  // the page is reloaded meanwhile.
  hub.addFault({ file: SHARD, covering: Math.floor((lmHead.start + lmHead.end) / 2), dropAfter: 0, stall: true, times: 1 });
  let panel = await openConvert(page);
  await panel.getByLabel('Hub repository').fill(REPO);
  await panel.getByLabel('Weights').selectOption('q4');
  await panel.getByRole('button', { name: 'Check' }).click();
  await panel.getByTestId('convert-plan').getByRole('button', { name: 'Convert in this browser' }).click();
  await expect(panel.getByTestId('convert-progress')).toHaveAttribute('data-stage', 'decoder', { timeout: 120_000 });
  // Wait for the silent response, give the conversion time to make what it wrote durable, then reload.
  const stalled = () => hub.requests.some((r) => r.path.endsWith(SHARD) && r.status === 206 && r.bodyBytes === 0);
  await expect.poll(stalled, { timeout: 120_000 }).toBe(true);
  await page.waitForTimeout(2500);
  await page.reload();

  panel = page.getByTestId('hub-convert');
  const pending = panel.getByTestId('pending-conversion');
  await expect(pending).toHaveCount(1);
  await expect(pending).toContainText(`${REPO} (q4)`);
  const requestsBefore = hub.requests.length;
  await pending.getByRole('button', { name: 'Resume' }).click();
  await expect(panel.getByTestId('convert-done')).toBeVisible({ timeout: 300_000 });
  await expect(panel.getByTestId('convert-done')).toContainText('kept from an earlier run');
  await expect(panel.getByTestId('pending-conversion')).toHaveCount(0);
  // Only the unfinished tensor (the LM head: its scales follow all of its rows in the file) was read
  // again; the vision encoder, the embedding table and the layers were not.
  const rangeOf = (r: { range?: string }) => /bytes=(\d+)-(\d+)/.exec(r.range ?? '')?.slice(1).map(Number) ?? [0, -1];
  const reread = hub.requests.slice(requestsBefore).filter((r) => r.path.endsWith(SHARD) && r.status === 206);
  const shardBytes = (await readFile(join(WORK, 'checkpoint', SHARD))).byteLength;
  const rereadBytes = reread.reduce((sum, r) => sum + r.bodyBytes, 0);
  expect(rereadBytes).toBeGreaterThan(0);
  expect(rereadBytes).toBeLessThan(0.6 * shardBytes);
  // Small tensors (norms, biases) are read whole by the graph builders on every run; nothing large
  // outside the LM head is read, and nothing of the embedding table.
  const outside = reread.filter((r) => {
    const [a, b] = rangeOf(r);
    return b < lmHead.start || a >= lmHead.end;
  });
  expect(outside.reduce((sum, r) => sum + r.bodyBytes, 0)).toBeLessThan(0.05 * shardBytes);
  expect(outside.filter((r) => rangeOf(r)[1] >= embedding.start && rangeOf(r)[0] < embedding.end).map((r) => r.range)).toEqual([]);
  const manifests = await cachedManifests(page);
  expect(manifests).toHaveLength(1);
  expectSameFiles(manifests[0]);
});

test('a wrong repository id and a gated repository without a token are refused with plain messages; a stopped conversion can be discarded', async ({ page }) => {
  const panel = await openConvert(page);
  await panel.getByLabel('Hub repository').fill('molmo2-web/no-such-model');
  await panel.getByRole('button', { name: 'Check' }).click();
  await expect(panel.getByTestId('convert-error')).toContainText('molmo2-web/no-such-model@main has no config.json');
  await expect(panel.getByTestId('convert-error')).toContainText('check the repository id and revision');

  await panel.getByLabel('Hub repository').fill(GATED);
  await panel.getByRole('button', { name: 'Check' }).click();
  await expect(panel.getByTestId('convert-error')).toContainText(`refused ${GATED} (HTTP 401)`);
  await expect(panel.getByTestId('convert-error')).toContainText('give an access token');

  // With the token, the same repository checks out.
  await panel.getByLabel(/Access token/).fill('hf_secret');
  await panel.getByRole('button', { name: 'Check' }).click();
  await expect(panel.getByTestId('convert-plan')).toContainText(GATED);
  expect(hub.requests.filter((r) => r.path.startsWith(`/${GATED}/`) && r.status === 200).every((r) => r.authorization === 'Bearer hf_secret')).toBe(true);

  // Stopped, the conversion is kept for a resume until it is discarded.
  await panel.getByTestId('convert-plan').getByRole('button', { name: 'Convert in this browser' }).click();
  await expect(panel.getByTestId('convert-progress')).toHaveAttribute('data-stage', /vision|decoder/);
  await panel.getByRole('button', { name: 'Stop conversion' }).click();
  await expect(panel.getByTestId('convert-error')).toContainText('Conversion stopped. What was converted is kept: start it again to resume.');
  const pending = panel.getByTestId('pending-conversion');
  await expect(pending).toContainText(`${GATED} (q4`);
  await pending.getByRole('button', { name: `Discard the unfinished conversion of ${GATED}` }).click();
  await expect(pending).toHaveCount(0);
  await expect(page.getByTestId('model-panel').getByTestId('cached-model')).toHaveCount(0);

  await panel.getByLabel('Hub repository').fill('not a repo id');
  await panel.getByRole('button', { name: 'Check' }).click();
  await expect(panel.getByTestId('convert-error')).toContainText('is not a Hugging Face repository id');
});
