// Bad model files and runtime faults against the real inference worker (onnxruntime-web WebGPU on
// SwiftShader): each case gives a plain message naming what is wrong, leaves nothing of the bad file in
// the OPFS cache, keeps no half-loaded model (current() is undefined) and a good load works after it.
// Broken files are served with page.route (the app's service worker leaves /models/ files alone) or
// written as broken copies of the tiny model next to it in public/models/.
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import type { Manifest } from '../src/molmo2/manifest.ts';
import { h264Clip } from './fixtures/clips.ts';
import { ask, chooseFolder, expectRunKeptThenAnswersAgain, load, loadTinyByUrl, openHarness, type LoadOpts } from './runtime-page.ts';
import { ensureRuntimeModel, MODEL_DIR, MODEL_NAME, MODEL_URL, ROOT } from './runtime-model.ts';
import { picture } from './runtime-reference.ts';

let manifest: Manifest;
const COPIES = join(ROOT, 'public', 'models');
const copyNames: string[] = [];

test.beforeAll(async () => {
  test.setTimeout(300_000);
  await ensureRuntimeModel();
  manifest = JSON.parse(readFileSync(join(MODEL_DIR, 'manifest.json'), 'utf8'));
});

test.describe.configure({ timeout: 300_000 });

const fp32 = { dtype: 'fp32', warmUp: false } as const;

function fileOf(suffix: string) {
  const v = manifest.variants.find((x) => x.dtype === 'fp32' && x.target === 'webgpu')!;
  const path = [...v.decoder.externalData, ...v.vision.externalData, v.decoder.model].find((p) => p.endsWith(suffix))!;
  return manifest.files.find((f) => f.path === path)!;
}

/** A load that must fail: its message. */
const loadError = (page: Page, options: LoadOpts = fp32, url = MODEL_URL) =>
  page.evaluate(([u, o]) => window.harness.load({ kind: 'url', url: u }, o).then(() => 'loaded', (e: Error) => e.message), [url, options] as const);

const blobs = (page: Page) => page.evaluate(() => window.harness.blobNames().catch(() => [] as string[]));

/** Nothing half-loaded stays: no current model, and the good model then loads and answers. */
async function expectRecovers(page: Page) {
  expect(await page.evaluate(() => window.harness.current())).toBeUndefined();
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  const { model } = await load(page, fp32);
  expect(model.name).toBe(manifest.name);
  const a = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2 });
  expect(a.done.tokens.length).toBeGreaterThan(0);
}

/** No blob of the file (`sha256`) and no partial download of it is in the cache; then the good model loads. */
async function expectNothingStoredThenRecovers(page: Page, sha256: string) {
  const names = await blobs(page);
  expect(names).not.toContain(sha256);
  expect(names).not.toContain(`${sha256}.part`);
  await expectRecovers(page);
}

/** Serves manifest.json edited by `edit` instead of the real one. */
async function routeManifest(page: Page, edit: (m: Manifest & Record<string, unknown>) => void) {
  await page.route(`**/models/${MODEL_NAME}/manifest.json`, (route) => {
    const m = JSON.parse(readFileSync(join(MODEL_DIR, 'manifest.json'), 'utf8'));
    edit(m);
    return route.fulfill({ status: 200, body: JSON.stringify(m), contentType: 'application/json' });
  });
}

test.afterEach(() => {
  // Copies carry the tiny model's name: the app's model list must not show them to later tests.
  for (const name of copyNames.splice(0)) rmSync(join(COPIES, name), { recursive: true, force: true });
});

/** A copy of the tiny model (or an empty folder) under public/models/<name>/, removed after the test. */
function copyModel(name: string, withModel = true): string {
  const dir = join(COPIES, name);
  rmSync(dir, { recursive: true, force: true });
  if (withModel) cpSync(MODEL_DIR, dir, { recursive: true });
  else mkdirSync(dir, { recursive: true });
  copyNames.push(name);
  return dir;
}

test.describe('bad model files', () => {
  test('a file missing on the server (HTTP 404) is named; no empty partial file is left; a good load works after', async ({ page }) => {
    await openHarness(page);
    const target = fileOf('decoder_fp32.onnx_data');
    await page.route(`**/models/${MODEL_NAME}/${target.path}`, (route) => route.fulfill({ status: 404, body: 'not found' }));
    const error = await loadError(page);
    expect(error).toContain(`${target.path} is missing from the model folder`);
    expect(error).toContain('HTTP 404');
    expect(error).toContain('copy or convert the model again');
    await expectNothingStoredThenRecovers(page, target.sha256);
  });

  test('external data cut short at the source is reported as cut short, twice fetched, and not kept', async ({ page }) => {
    await openHarness(page);
    const target = fileOf('decoder_fp32.onnx_data');
    const half = readFileSync(join(MODEL_DIR, target.path)).subarray(0, Math.floor(target.bytes / 2));
    let served = 0;
    await page.route(`**/models/${MODEL_NAME}/${target.path}`, (route) => {
      served++;
      return route.fulfill({ status: 200, body: Buffer.from(half), contentType: 'application/octet-stream' });
    });
    const error = await loadError(page);
    expect(served).toBe(2);
    expect(error).toContain(`${target.path} from`);
    expect(error).toContain(`is cut short: the server sent ${half.byteLength} of its ${target.bytes} bytes (twice)`);
    await expectNothingStoredThenRecovers(page, target.sha256);
  });

  test('a manifest with a wrong sha256 for a file is reported with both hashes; nothing is cached under it', async ({ page }) => {
    await openHarness(page);
    const target = fileOf('vision_fp32.onnx_data');
    const wrong = createHash('sha256').update('not the file').digest('hex');
    await routeManifest(page, (m) => {
      m.files.find((f) => f.path === target.path)!.sha256 = wrong;
    });
    const error = await loadError(page);
    expect(error).toContain(`${target.path} from`);
    expect(error).toContain(`is corrupt: expected ${target.bytes} bytes with SHA-256 ${wrong}, got SHA-256 ${target.sha256} (twice)`);
    expect(error).toContain('does not match its manifest.json');
    const names = await blobs(page);
    expect(names.filter((n) => n.startsWith(wrong))).toEqual([]);
    // The load failed, so no cached model is recorded for the bad manifest.
    expect(await page.evaluate(() => window.harness.list())).toEqual([]);
    await expectRecovers(page);
  });

  test('a manifest from a newer format version asks to update the app before anything is downloaded', async ({ page }) => {
    await openHarness(page);
    await routeManifest(page, (m) => {
      m.formatVersion = (m.formatVersion as number) + 1;
    });
    const error = await loadError(page);
    expect(error).toContain(`has format version ${manifest.formatVersion + 1}; this app reads versions 1 and ${manifest.formatVersion}. Update the app.`);
    expect(await blobs(page)).toEqual([]);
    await expectRecovers(page);
  });

  test('a model converted to fp16 only is refused on a GPU without shader-f16, naming both', async ({ page }) => {
    await openHarness(page);
    const caps = await page.evaluate(() => window.harness.capabilities());
    expect(caps.shaderF16).toBe(false);
    // The same folder as if converted with --dtype q4f16 only.
    await routeManifest(page, (m) => {
      m.variants = m.variants.filter((v) => v.dtype === 'q4').map((v) => ({ ...v, dtype: 'q4f16' }));
    });
    const error = await loadError(page, { warmUp: false });
    expect(error).toContain('was converted to q4f16 only');
    expect(error).toContain('no fp16 shader support (shader-f16)');
    expect(error).toContain('Convert it again with --dtype q4');
    // Asking for fp16 weights by name is refused the same way.
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    const asked = await loadError(page, { dtype: 'q4f16', warmUp: false });
    expect(asked).toContain('q4f16 weights need fp16 shader support (shader-f16), which this GPU lacks. Choose q4 or fp32 instead.');
    expect(await blobs(page)).toEqual([]);
    await expectRecovers(page);
  });

  test('a folder that is not a Molmo2 model (no manifest, or random JSON as manifest) is named as such', async ({ page }) => {
    await openHarness(page);
    const name = 'e2e-faults-not-a-model';
    const dir = copyModel(name, false);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ hello: 'world', layers: [1, 2, 3] }));
    writeFileSync(join(dir, 'notes.json'), JSON.stringify({ random: Math.PI }));
    const noManifest = await loadError(page, fp32, `/models/${name}/`);
    expect(noManifest).toContain(`/models/${name}/manifest.json was not found`);
    expect(noManifest).toContain('a converted model folder has a manifest.json');

    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ hello: 'world' }));
    const randomManifest = await loadError(page, fp32, `/models/${name}/`);
    expect(randomManifest).toContain('manifest.json has no "format" field');
    expect(randomManifest).toContain('this is not a model converted by `npm run convert`');

    // The same folder picked from the disk (<input webkitdirectory>) without its manifest.
    const local = join(tmpdir(), `molmo2-faults-${process.pid}`, 'not-a-model');
    rmSync(local, { recursive: true, force: true });
    mkdirSync(local, { recursive: true });
    writeFileSync(join(local, 'config.json'), '{"hello":"world"}');
    await chooseFolder(page, local);
    const picked = await page.evaluate(() => window.harness.loadFromInput('#folder').then(() => 'loaded', (e: Error) => e.message));
    expect(picked).toContain('the chosen folder has no manifest.json');
    rmSync(local, { recursive: true, force: true });
    expect(await blobs(page)).toEqual([]);
    await expectRecovers(page);
  });
});

/** Keeps every GPUDevice the worker creates from now on (onnxruntime's among them), to destroy it later. */
async function keepDevices(page: Page) {
  const worker = page.workers().find((w) => w.url().includes('inference.worker'));
  expect(worker, 'the inference worker').toBeDefined();
  await worker!.evaluate(() => {
    const proto = GPUAdapter.prototype;
    const requestDevice = proto.requestDevice;
    const kept: GPUDevice[] = ((self as unknown as { keptDevices: GPUDevice[] }).keptDevices = []);
    proto.requestDevice = async function (this: GPUAdapter, d?: GPUDeviceDescriptor) {
      const device = await requestDevice.call(this, d);
      kept.push(device);
      return device;
    };
  });
  return {
    destroy: () =>
      worker!.evaluate(() => {
        const kept = (self as unknown as { keptDevices: GPUDevice[] }).keptDevices;
        for (const d of kept) d.destroy();
        return kept.length;
      }),
  };
}

test.describe('faults', () => {
  test('GPU device lost while decoding: the answer fails in plain words, the model is unloaded, the same worker loads again', async ({ page }) => {
    await openHarness(page);
    const devices = await keepDevices(page);
    await load(page, fp32);
    // Resolves once the decode stage has begun: the device is destroyed while the answer is decoding.
    await page.evaluate(
      () =>
        new Promise<void>((decoding) => {
          const w = window as unknown as { pending: Promise<string> };
          const onEvent = (e: { type: string; stage?: string }) => e.type === 'stage' && e.stage === 'decode' && decoding();
          w.pending = window.harness.ask('Describe everything.', { kind: 'none' }, { maxNewTokens: 2000, onEvent }).then((r) => `answered: ${r.done.stoppedBy}`, (e: Error) => e.message);
          void w.pending.then(() => decoding());
        }),
    );
    expect(await devices.destroy()).toBeGreaterThan(0);
    const outcome = await page.evaluate(() => (window as unknown as { pending: Promise<string> }).pending);
    expect(outcome).toMatch(/^The GPU was lost \(.+\), so this answer was stopped and the model unloaded\. Your results are kept; reload the model to continue\.$/);
    expect(await page.evaluate(() => window.harness.current())).toBeUndefined();
    // onnxruntime's wasm state does not survive the loss: this worker refuses plainly, a fresh one loads.
    const again = await loadError(page);
    expect(again).toContain('The GPU was lost');
    expect(again).toContain('This worker cannot use the GPU again; start a new one');
    await page.evaluate(() => window.harness.start());
    await expectRecovers(page);
  });

  test('cancel during download and during GPU preparation leaves no model and no partial file; the next load works', async ({ page }) => {
    await openHarness(page);
    // Hold one file back until the load has ended, so the cancel lands while the download is under way.
    const target = fileOf('decoder_fp32.onnx_data');
    let release = () => {};
    const loadEnded = new Promise<void>((r) => (release = r));
    await page.route(`**/models/${MODEL_NAME}/${target.path}`, async (route) => {
      await loadEnded;
      await route.continue().catch(() => {});
    });
    const download = await page.evaluate(([u, o]) => window.harness.loadCancelAt({ kind: 'url', url: u }, o, 'download'), [MODEL_URL, fp32] as const);
    release();
    expect(download).toEqual({ cancelled: true, error: 'the model load was cancelled' });
    expect(await page.evaluate(() => window.harness.current())).toBeUndefined();
    expect(await blobs(page)).not.toContain(target.sha256);
    await page.unrouteAll({ behavior: 'ignoreErrors' });

    const preparing = await page.evaluate(([u]) => window.harness.loadCancelAt({ kind: 'url', url: u }, { dtype: 'fp32' }, 'preparing'), [MODEL_URL] as const);
    expect(preparing).toEqual({ cancelled: true, error: 'the model load was cancelled' });
    await expectRecovers(page);
  });

  test('cancel during vision, prefill and decode stops the answer; the next question gives the uncancelled tokens', async ({ page }) => {
    test.setTimeout(600_000);
    await openHarness(page);
    await load(page, fp32);
    // No keys: every question runs the vision encoder, so each cancel meets the stage it aims at.
    const frames = [0, 0.5].map((t, i) => ({ image: picture(64, 36, 30 + i), timestamp: t }));
    const visual = { kind: 'video', frames } as const;
    const want = await ask(page, 'What happens?', visual, { maxNewTokens: 4 });
    for (const stage of ['vision', 'prefill', 'decode']) {
      const r = await ask(page, 'Describe the clip.', visual, { maxNewTokens: 40, cancelAtStage: stage });
      expect(r.done.stoppedBy, stage).toBe('cancel');
      const stages = r.events.filter((e) => e.type === 'stage').map((e) => (e as { stage: string }).stage);
      expect(stages, stage).toContain(stage);
      if (stage === 'vision') expect(stages).not.toContain('decode');
      expect(r.done.tokens.length, stage).toBeLessThan(40);
    }
    // Nothing a cancel left behind (cached prefix, features) changes the next answer.
    const again = await ask(page, 'What happens?', visual, { maxNewTokens: 4 });
    expect(again.done.tokens).toEqual(want.done.tokens);
  });

  test('a KV cache the GPU cannot allocate is refused with a plain message and a smaller suggestion', async ({ page }) => {
    await openHarness(page);
    // The tiny model with a huge position limit, so a context of 2^24 tokens is allowed by the model
    // but its per-layer KV buffers (GiBs each) exceed what SwiftShader can allocate.
    const name = 'e2e-faults-long-context';
    const dir = copyModel(name);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    (config.text_config as Record<string, unknown>).max_position_embeddings = 2 ** 24;
    const text = JSON.stringify(config);
    writeFileSync(join(dir, 'config.json'), text);
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    const entry = m.files.find((f) => f.path === 'config.json')!;
    entry.bytes = Buffer.byteLength(text);
    entry.sha256 = createHash('sha256').update(text).digest('hex');
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));

    const error = await loadError(page, { ...fp32, maxContext: 2 ** 24 }, `/models/${name}/`);
    expect(error).toContain(`The GPU could not allocate the memory this model needs with a ${2 ** 24}-token context.`);
    expect(error).toContain('Load it with a smaller context (maxContext) or a smaller dtype (q4)');
    await expectRecovers(page);
  });

  test('memory the GPU cannot give during an answer (vision features) is reported with a smaller suggestion; the model stays loaded and answers the same', async ({ page }) => {
    test.setTimeout(600_000);
    await openHarness(page);
    await load(page, fp32);
    const frames = (key: string) => [0, 0.5].map((t, i) => ({ image: picture(64, 36, 30 + i), timestamp: t, key: `${key}#${i}` }));
    const want = await ask(page, 'What happens?', { kind: 'video', frames: frames('first') }, { maxNewTokens: 4 });
    await page.evaluate(() => window.harness.clearCaches());
    // The buffers that keep this question's features fail as an exhausted GPU fails them: a buffer
    // WebGPU cannot create, reported only through an error scope (here by asking for more than the
    // adapter's maxBufferSize).
    const worker = page.workers().find((w) => w.url().includes('inference.worker'))!;
    await worker.evaluate(() => {
      const proto = GPUDevice.prototype;
      const createBuffer = proto.createBuffer;
      const flags = self as unknown as { failFeatureBuffers: boolean };
      flags.failFeatureBuffers = true;
      proto.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
        const fail = flags.failFeatureBuffers && d.label?.startsWith('molmo2 vision features');
        return createBuffer.call(this, fail ? { ...d, size: this.limits.maxBufferSize + 4 } : d);
      };
    });
    const failed = await page.evaluate(
      (f) => window.harness.ask('What happens?', { kind: 'video', frames: f }, { maxNewTokens: 4 }).then(() => 'answered', (e: Error) => e.message),
      frames('second'),
    );
    expect(failed).toMatch(/^The GPU ran out of memory while answering\. Ask about fewer frames or a shorter range, or load the model with a smaller context\. \(vision features of 2 items: allocation failed: Buffer size \(\d+\) exceeds the max buffer size limit \(\d+\)\.\)$/);
    // Still loaded, nothing of the failed question kept: the same frames then answer as before.
    expect(await page.evaluate(() => window.harness.current())).toBeDefined();
    await worker.evaluate(() => ((self as unknown as { failFeatureBuffers: boolean }).failFeatureBuffers = false));
    const again = await ask(page, 'What happens?', { kind: 'video', frames: frames('second') }, { maxNewTokens: 4 });
    expect(again.done.timings.visionCacheHits).toBe(0);
    expect(again.done.tokens).toEqual(want.done.tokens);
  });

  test('GPU device lost during an answer: reported in plain words, the run kept, the model loads again and answers', async ({ page }) => {
    test.setTimeout(600_000);
    await page.goto('/');
    await page.getByTestId('video-input').setInputFiles(h264Clip());
    await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');
    const panel = page.getByTestId('model-panel');
    await expect(panel).toHaveAttribute('data-status', 'idle', { timeout: 60_000 });
    const devices = await keepDevices(page);
    await loadTinyByUrl(page);
    await expect(panel).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });

    const box = page.getByTestId('ask-box');
    await box.getByLabel('Question').fill('Describe this image.');
    await box.getByLabel('Question').press('Enter');
    await expect(box.getByTestId('answer')).not.toBeEmpty({ timeout: 240_000 });
    await expect(box).toHaveAttribute('data-status', 'running');
    const destroyed = await devices.destroy();
    expect(destroyed).toBeGreaterThan(0);

    await expect(box).toHaveAttribute('data-status', 'error', { timeout: 60_000 });
    await expect(box.getByRole('alert')).toContainText('The GPU was lost');
    await expect(box.getByRole('alert')).toContainText('reload the model');
    await expect(panel).toHaveAttribute('data-status', 'error');
    await expect(panel).toContainText('The GPU was lost');
    await expectRunKeptThenAnswersAgain(page);
  });
});
