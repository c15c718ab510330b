// The inference worker end to end in Chromium on SwiftShader WebGPU, with a tiny random Molmo2 converted
// by the real converter into public/models/: loading with progress, answers equal to the fp32
// reference's greedy tokens (static and growing KV caches), cancel, the OPFS cache (offline reload,
// corruption, resume, list/delete), local folders and the main thread staying responsive.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import type { Manifest } from '../src/molmo2/manifest.ts';
import { ensureRuntimeModel, MODEL_DIR, MODEL_NAME, MODEL_URL } from './runtime-model.ts';
import { maxAbsDiff, picture, RuntimeReference } from './runtime-reference.ts';
import { ask, chooseFolder, load, openHarness } from './runtime-page.ts';

let reference: RuntimeReference;
let manifest: Manifest;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  const model = await ensureRuntimeModel();
  reference = await RuntimeReference.create(model);
  manifest = JSON.parse(readFileSync(join(MODEL_DIR, 'manifest.json'), 'utf8'));
});

function variantFiles(dtype: string, target: string): { path: string; bytes: number; sha256: string }[] {
  const v = manifest.variants.find((x) => x.dtype === dtype && x.target === target)!;
  const paths = new Set([v.vision.model, ...v.vision.externalData, v.decoder.model, ...v.decoder.externalData]);
  return manifest.files.filter((f) => paths.has(f.path));
}

/** Checks an answer against the reference: same greedy tokens, logits along them close. */
function expectReference(done: { tokens: number[]; logits?: number[][]; text: string }, want: { tokens: number[]; logits: Float32Array[] }) {
  expect(done.tokens).toEqual(want.tokens);
  expect(done.logits?.length).toBe(want.logits.length);
  const worst = Math.max(...want.logits.map((l, i) => maxAbsDiff(done.logits![i], l)));
  expect(worst).toBeLessThan(2e-3);
  expect(done.text).toBe(reference.decode(want.tokens));
}

/**
 * onnxruntime's own account of a graph's placement: a session made in the page with verbose logging
 * prints "Node(s) placed on [CPUExecutionProvider]" and each node as "Op (name)".
 */
async function verbosePlacement(page: Page, graphUrl: string): Promise<{ gpu: number; cpu: string[] }> {
  const lines: string[] = [];
  const listen = (m: { text(): string }) => /VerifyEachNodeIsAssignedToAnEp/.test(m.text()) && lines.push(m.text());
  page.on('console', listen);
  await page.evaluate(async (url) => {
    const { setupOrt, webgpuSessionOptions } = (await import(String('/src/runtime/ort.ts'))) as typeof import('../src/runtime/ort.ts');
    const ort = await setupOrt();
    const bytes = async (u: string) => new Uint8Array(await (await fetch(u)).arrayBuffer());
    const file = url.slice(url.lastIndexOf('/') + 1);
    const options = webgpuSessionOptions({ externalData: [{ path: `${file}_data`, data: await bytes(`${url}_data`) }], logSeverityLevel: 0, logVerbosityLevel: 1 });
    const session = await ort.InferenceSession.create(await bytes(url), { ...options, extra: { session: { disable_cpu_ep_fallback: '0' } } });
    await session.release();
  }, graphUrl);
  await expect.poll(() => lines.filter((l) => /Node\(s\) placed on \[WebGpu/.test(l)).length).toBe(1);
  page.off('console', listen);
  let ep = '';
  const out = { gpu: 0, cpu: [] as string[] };
  for (const l of lines) {
    const header = /Node\(s\) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(l);
    if (header) {
      ep = header[1];
      if (ep === 'WebGpuExecutionProvider') out.gpu = Number(header[2]);
    } else if (ep === 'CPUExecutionProvider') {
      const node = /\]\s{3}(\S+ \(.*\))\s*$/.exec(l);
      if (node) out.cpu.push(node[1]);
    }
  }
  return out;
}

test.describe('inference worker', () => {
  test.describe.configure({ timeout: 420_000 });

  test('loads a converted model from /models/ with one overall progress; a GPU without shader-f16 gets q4; its compute is placed on the GPU', async ({ page }) => {
    const ortLines: string[] = [];
    page.on('console', (m) => /onnxruntime/.test(m.text()) && ortLines.push(m.text()));
    await openHarness(page);
    const caps = await page.evaluate(() => window.harness.capabilities());
    expect(caps.webgpu).toBe(true);
    expect(caps.shaderF16).toBe(false);
    expect(caps.preferredDtype).toBe('q4');
    const { model, progress } = await load(page);
    expect(model.dtype).toBe('q4');
    expect(model.target).toBe('webgpu');
    expect(model.kvCache).toBe('static');
    expect(model.randomWeights).toBe(true);
    expect(model.from).toBe('source');
    expect(model.storage).toBe('opfs');

    // The CPU-placed nodes as read at load equal onnxruntime's own verbose placement of the same graphs;
    // they are small index/shape computations, none of the weight-bearing or per-token work; and
    // onnxruntime's partitioning chatter is kept off the console.
    expect(ortLines).toEqual([]);
    expect(model.placement.map((p) => p.graph)).toEqual(['onnx/webgpu/vision_q4.onnx', 'onnx/webgpu/decoder_q4.onnx']);
    const compute = /^(MatMulNBits|MatMul|Gemm|Conv|GroupQueryAttention|MultiHeadAttention|Attention|Softmax|GatherBlockQuantized|\w*LayerNormalization|Gelu)$/;
    for (const p of model.placement) {
      expect(p.cpuNodes.filter((n) => compute.test(n.op) || /lm_head|embed_tokens\/Gather/.test(n.name))).toEqual([]);
      const verbose = await verbosePlacement(page, `${MODEL_URL}${p.graph}`);
      // The decoder's prefill keeps each chunk slot's row arithmetic (int64 ranges and position slices) on the CPU.
      expect(verbose.gpu).toBeGreaterThan(3 * verbose.cpu.length);
      expect(p.cpuNodes.map((n) => `${n.op} (${n.name})`).sort()).toEqual(verbose.cpu.sort());
    }
    expect(model.placement[1].cpuNodes.length).toBeGreaterThan(0); // onnxruntime does keep some shape computations there
    expect(model.warnings.filter((w) => /on the CPU/.test(w))).toEqual([]);

    // The KV cache was sized from the GPU memory measured free after the weights: the tiny model's
    // cache (768 bytes a token) fits its longest context.
    expect(model.memoryPlan).toMatchObject({ from: 'measured', maxContext: 36864, kvBytesPerToken: 3 * 2 * 2 * 16 * 4 });
    expect(model.memoryPlan.measuredFreeBytes).toBeGreaterThan(36864 * 768 + model.memoryPlan.reserveBytes);
    expect(model.maxContext).toBe(36864);

    // Stages in order, bytes never going back, a total that covers the variant's graphs.
    const stages = progress.map((p) => p.stage).filter((s, i, a) => s !== a[i - 1]);
    expect(stages).toEqual(['manifest', 'download', 'preparing', 'ready']);
    for (let i = 1; i < progress.length; i++) expect(progress[i].bytesDone).toBeGreaterThanOrEqual(progress[i - 1].bytesDone);
    const graphs = variantFiles('q4', 'webgpu');
    const last = progress[progress.length - 1];
    expect(last.bytesDone).toBe(last.bytesTotal);
    expect(last.bytesTotal).toBeGreaterThan(graphs.reduce((s, f) => s + f.bytes, 0));
    for (const f of graphs) expect(last.files.find((x) => x.path === f.path)?.state).toBe('done');
    expect(last.files.some((f) => f.path.includes('fp32') || f.path.includes('/cpu/'))).toBe(false);
    expect(progress.some((p) => p.stage === 'download' && p.bytesDone > 0 && p.bytesDone < p.bytesTotal)).toBe(true);
    expect(model.timings.warmUpMs).toBeGreaterThan(0);
    test.info().annotations.push({ type: 'load (q4, SwiftShader)', description: JSON.stringify(model.timings) });

    const a = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2 });
    expect(a.done.tokens.length).toBeGreaterThan(0);
    expect(['eos', 'max-tokens']).toContain(a.done.stoppedBy);
  });

  test('a GPU with less memory free gets a shorter context, measured, not guessed', async ({ page }) => {
    await openHarness(page);
    // Let the memory probe's buffers fail once 2.5 GiB are allocated, as a GPU with that much free would.
    const worker = page.workers().find((w) => w.url().includes('inference.worker'))!;
    await worker.evaluate(() => {
      const proto = GPUDevice.prototype;
      const createBuffer = proto.createBuffer;
      let probed = 0;
      proto.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
        if (d.label !== 'molmo2 memory probe') return createBuffer.call(this, d);
        probed += d.size;
        return createBuffer.call(this, probed > 2.5 * 2 ** 30 ? { ...d, size: this.limits.maxBufferSize + 4 } : d);
      };
    });
    const { model } = await load(page, { warmUp: false });
    // 2.5 GiB measured − a reserve of 256 MiB (feature cache) + 2 GiB (activations) + 512 MiB leaves
    // nothing: the smallest useful context, said plainly.
    expect(model.memoryPlan).toMatchObject({ from: 'measured', maxContext: 2048, measuredFreeBytes: 2.5 * 2 ** 30 });
    expect(model.maxContext).toBe(2048);
    expect(model.memoryPlan.text).toMatch(/^2048-token context: KV cache 2 MiB \(1 KiB a token\) of 2\.5 GiB measured free on the GPU after the weights/);
  });

  test('answers about one image with the reference greedy tokens (static KV cache, ImageBitmap input)', async ({ page }) => {
    await openHarness(page);
    const { model } = await load(page, { dtype: 'fp32', warmUp: false });
    expect(model.kvCache).toBe('static');
    const image = picture(72, 50, 1);
    const want = reference.answer('Point to the red square.', { images: [image] }, 6);
    const a = await ask(page, 'Point to the red square.', { kind: 'images', images: [image] }, { maxNewTokens: 6, bitmaps: true, returnLogits: true });
    expectReference(a.done, want);
    expect(a.done.timings.promptTokens).toBe(want.promptTokens);
    // Streamed events: stages in order (vision repeats with its progress), one token event per generated token (EOS excepted).
    const stages = a.events.filter((e) => e.type === 'stage').map((e) => (e as { stage: string }).stage);
    expect(stages.filter((s, i) => s !== stages[i - 1])).toEqual(['preprocess', 'vision', 'prefill', 'decode']);
    expect(a.done.timings.preprocess).toBe(model.preprocess);
    const tokenEvents = a.events.filter((e) => e.type === 'token');
    expect(tokenEvents.length).toBe(want.tokens.filter((t) => t !== 151645).length);
    expect(a.events[a.events.length - 1].type).toBe('done');
    test.info().annotations.push({ type: 'image ask (fp32, SwiftShader)', description: JSON.stringify(a.done.timings) });
  });

  test('answers about three video frames and a short range with the reference tokens (static and growing caches)', async ({ page }) => {
    await openHarness(page);
    const frames = [0, 0.5, 1].map((t, i) => ({ image: picture(64, 36, 10 + i), timestamp: t }));
    const range = [1.5, 2, 2.5, 3].map((t, i) => ({ image: picture(64, 36, 20 + i), timestamp: t }));
    const wantFrames = reference.answer('What happens?', { frames }, 5);
    const wantRange = reference.answer('Track the ball.', { frames: range }, 5);

    await load(page, { dtype: 'fp32', warmUp: false });
    const a = await ask(page, 'What happens?', { kind: 'video', frames }, { maxNewTokens: 5, returnLogits: true });
    expectReference(a.done, wantFrames);

    const { model } = await load(page, { dtype: 'fp32', target: 'cpu', warmUp: false });
    expect(model.kvCache).toBe('dynamic');
    const b = await ask(page, 'Track the ball.', { kind: 'video', frames: range }, { maxNewTokens: 5, returnLogits: true });
    expectReference(b.done, wantRange);
  });

  test('cancel() stops within one decode step and leaves the worker ready', async ({ page }) => {
    await openHarness(page);
    await load(page, { dtype: 'fp32', warmUp: false });
    const a = await ask(page, 'Describe everything.', { kind: 'none' }, { maxNewTokens: 60, cancelAfter: 2 });
    if (a.done.stoppedBy !== 'eos') {
      expect(a.done.stoppedBy).toBe('cancel');
      // Cancel arrives while the next step runs: that step's token is the last one.
      expect(a.done.tokens.length).toBeGreaterThanOrEqual(2);
      expect(a.done.tokens.length).toBeLessThanOrEqual(3);
    }
    const b = await ask(page, 'Point to the dog.', { kind: 'images', images: [picture(40, 40, 3)] }, { maxNewTokens: 3 });
    expect(b.done.tokens.length).toBeGreaterThan(0);
    expect(b.done.stoppedBy).not.toBe('cancel');
  });

  test('a second page load takes the model from the cache with the network to the model blocked; list and delete', async ({ page }) => {
    await openHarness(page);
    const first = await load(page, { dtype: 'fp32', warmUp: false });
    expect(first.model.storage).toBe('opfs');
    const answer = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2 });

    await page.reload();
    const blocked: string[] = [];
    await page.route('**/models/**', (route) => {
      blocked.push(route.request().url());
      return route.abort('internetdisconnected');
    });
    await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
    await page.evaluate(() => window.harness.start());
    const second = await load(page, { dtype: 'fp32', warmUp: false });
    expect(second.model.from).toBe('cache');
    expect(second.model.warnings.join(' ')).toContain('cached copy');
    expect(blocked.length).toBeGreaterThan(0); // the manifest was tried, and only the manifest
    expect(blocked.every((u) => u.endsWith('/manifest.json'))).toBe(true);
    const again = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2 });
    expect(again.done.tokens).toEqual(answer.done.tokens);

    const list = await page.evaluate(() => window.harness.list());
    expect(list).toHaveLength(1);
    expect(list[0].name).toBe(manifest.name);
    const cachedPaths = [...variantFiles('fp32', 'webgpu'), ...manifest.files.filter((f) => ['config.json', 'tokenizer.json'].includes(f.path))];
    expect(list[0].bytes).toBeGreaterThan(cachedPaths.reduce((s, f) => s + f.bytes, 0) - 1);
    const byId = await page.evaluate((id) => window.harness.load({ kind: 'cached', id }, { dtype: 'fp32', warmUp: false }), list[0].id);
    expect(byId.model.from).toBe('cache');

    await page.evaluate(() => window.harness.unload());
    expect(await page.evaluate((id) => window.harness.remove(id), list[0].id)).toBe(true);
    expect(await page.evaluate(() => window.harness.list())).toHaveLength(0);
    expect(await page.evaluate(() => window.harness.blobNames())).toEqual([]);
  });

  test('a corrupted cached file is detected by its hash and downloaded again', async ({ page }) => {
    await openHarness(page);
    await load(page, { dtype: 'fp32', warmUp: false });
    const target = variantFiles('fp32', 'webgpu').find((f) => f.path.endsWith('decoder_fp32.onnx_data'))!;
    await page.evaluate(([sha, at]) => window.harness.corruptBlob(sha, at), [target.sha256, Math.floor(target.bytes / 2)] as const);

    await page.reload();
    const fetched: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes(`/models/${MODEL_NAME}/`)) fetched.push(new URL(r.url()).pathname);
    });
    await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
    await page.evaluate(() => window.harness.start());
    const { model, progress } = await load(page, { dtype: 'fp32', warmUp: false });
    expect(model.from).toBe('mixed');
    expect(fetched.filter((p) => p.endsWith(target.path))).toHaveLength(1);
    expect(fetched.filter((p) => !p.endsWith('manifest.json') && !p.endsWith(target.path))).toEqual([]);
    const states = progress[progress.length - 1].files;
    expect(states.find((f) => f.path === target.path)?.state).toBe('done');
    expect(states.filter((f) => f.path !== target.path).every((f) => f.state === 'cached')).toBe(true);
    const a = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2, returnLogits: true });
    expectReference(a.done, reference.answer('Hi', {}, 2));
  });

  test('an interrupted download resumes with a Range request', async ({ page }) => {
    await openHarness(page);
    await load(page, { dtype: 'fp32', warmUp: false });
    const target = variantFiles('fp32', 'webgpu').find((f) => f.path.endsWith('decoder_fp32.onnx_data'))!;
    const keep = Math.floor(target.bytes * 0.6);
    await page.evaluate(([sha, n]) => window.harness.truncateToPartial(sha, n), [target.sha256, keep] as const);

    await page.reload();
    const ranges: { range?: string; status?: number }[] = [];
    page.on('response', (r) => {
      if (r.url().endsWith(target.path)) ranges.push({ range: r.request().headers().range, status: r.status() });
    });
    await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
    await page.evaluate(() => window.harness.start());
    const { model } = await load(page, { dtype: 'fp32', warmUp: false });
    expect(model.from).toBe('mixed');
    expect(ranges).toEqual([{ range: `bytes=${keep}-`, status: 206 }]);
    const a = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2, returnLogits: true });
    expectReference(a.done, reference.answer('Hi', {}, 2));
  });

  test('storage full while caching: the model loads from memory with a plain message, and nothing half-written stays cached', async ({ page }) => {
    await openHarness(page);
    // The origin's storage "fills up" 300 KB into the download: OPFS writes then throw QuotaExceededError.
    const worker = page.workers().find((w) => w.url().includes('inference.worker'))!;
    await worker.evaluate(() => {
      let written = 0;
      const full = (n: number) => {
        written += n;
        if (written > 300_000) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      };
      // The worker's cache writes through sync access handles (a worker-only type, hence the loose typing).
      type Write = (this: unknown, buffer: ArrayBufferView, options?: { at?: number }) => number;
      const sync = (self as unknown as { FileSystemSyncAccessHandle: { prototype: { write: Write } } }).FileSystemSyncAccessHandle.prototype;
      const syncWrite = sync.write;
      sync.write = function (buffer, options) {
        full(buffer.byteLength);
        return syncWrite.call(this, buffer, options);
      };
    });
    const { model } = await load(page, { warmUp: false });
    expect(model.storage).toBe('memory');
    expect(model.warnings).toContain('The browser storage is full, so the model is kept in memory only and will be downloaded again next time. Free space by deleting cached models.');
    const a = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2 });
    expect(a.done.tokens.length).toBeGreaterThan(0);

    // What the cache holds: only whole files, each of its manifest size (no .part file left behind).
    const held = await page.evaluate(async () => {
      const dir = await (await (await navigator.storage.getDirectory()).getDirectoryHandle('molmo2-web')).getDirectoryHandle('blobs');
      const out: { name: string; size: number }[] = [];
      for await (const [name, h] of dir as unknown as AsyncIterable<[string, FileSystemFileHandle]>) out.push({ name, size: (await h.getFile()).size });
      return out;
    });
    const bySha = new Map(manifest.files.map((f) => [f.sha256, f.bytes]));
    expect(held.filter((f) => !bySha.has(f.name) || bySha.get(f.name) !== f.size)).toEqual([]);
    const variantBytes = variantFiles('q4', 'webgpu').reduce((n, f) => n + f.bytes, 0);
    expect(held.reduce((n, f) => n + f.size, 0)).toBeLessThan(variantBytes);
  });

  test('a file that is corrupt at the source is fetched twice, then reported', async ({ page }) => {
    await openHarness(page);
    const target = variantFiles('fp32', 'webgpu').find((f) => f.path.endsWith('decoder_fp32.onnx'))!;
    const original = readFileSync(join(MODEL_DIR, target.path));
    let served = 0;
    await page.route(`**/models/${MODEL_NAME}/${target.path}`, (route) => {
      served++;
      const bad = Buffer.from(original);
      bad[100] ^= 0xff;
      return route.fulfill({ status: 200, body: bad, contentType: 'application/octet-stream' });
    });
    const error = await page.evaluate((url) => window.harness.load({ kind: 'url', url }, { dtype: 'fp32', warmUp: false }).then(() => 'loaded', (e: Error) => e.message), MODEL_URL);
    expect(served).toBe(2);
    expect(error).toContain(`${target.path} from`);
    expect(error).toContain('is corrupt');
    expect(error).toContain(target.sha256);
    expect(error).toContain('(twice)');
    // Nothing corrupt stays in the cache.
    expect(await page.evaluate(() => window.harness.blobNames())).not.toContain(target.sha256);
  });

  test('a model whose chat template cannot be used, or that has none, is refused at load, naming it', async ({ page }) => {
    await openHarness(page);
    // The folder as served, with chat_template.jinja replaced by a template that does not parse (the
    // manifest's entry updated to match it, so that the download itself is sound) or left out.
    const broken = Buffer.from('{% for m in messages %}{{ m.content }');
    const brokenEntry = { path: 'chat_template.jinja', bytes: broken.byteLength, sha256: createHash('sha256').update(broken).digest('hex') };
    let served = JSON.stringify({ ...manifest, files: manifest.files.map((f) => (f.path === 'chat_template.jinja' ? brokenEntry : f)) });
    await page.route(`**/models/${MODEL_NAME}/manifest.json`, (route) => route.fulfill({ status: 200, body: served, contentType: 'application/json' }));
    await page.route(`**/models/${MODEL_NAME}/chat_template.jinja`, (route) => route.fulfill({ status: 200, body: broken, contentType: 'text/plain' }));
    const tryLoad = () => page.evaluate((url) => window.harness.load({ kind: 'url', url }, { dtype: 'fp32', warmUp: false }).then(() => 'loaded', (e: Error) => e.message), MODEL_URL);
    const refused = await tryLoad();
    expect(refused).toContain('its chat template cannot be used: chat_template.jinja: it cannot be parsed: ');
    expect(refused.startsWith(`${manifest.name}: `)).toBe(true);

    served = JSON.stringify({ ...manifest, files: manifest.files.filter((f) => f.path !== 'chat_template.jinja') });
    expect(await tryLoad()).toBe(`${manifest.name} has no chat template (no chat_template.jinja, and no chat_template in tokenizer_config.json); convert the model again`);
  });

  test('loads a folder chosen with <input webkitdirectory> or as a directory handle, and reports a missing model clearly', async ({ page }) => {
    await openHarness(page);
    const missing = await page.evaluate(() => window.harness.load({ kind: 'url', url: '/models/no-such-model/' }).then(() => 'loaded', (e: Error) => e.message));
    expect(missing).toContain('/models/no-such-model/manifest.json was not found');

    await chooseFolder(page, MODEL_DIR);
    const { model } = await page.evaluate(() => window.harness.loadFromInput('#folder', { dtype: 'fp32', warmUp: false }));
    expect(model.from).toBe('source');
    expect(model.storage).toBe('none');
    const a = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2, returnLogits: true });
    expectReference(a.done, reference.answer('Hi', {}, 2));

    const viaHandle = await page.evaluate(() => window.harness.loadFromDirectoryCopy('#folder', { dtype: 'fp32', warmUp: false }));
    expect(viaHandle.model.from).toBe('source');
    expect(viaHandle.model.storage).toBe('none');
    const b = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2 });
    expect(b.done.tokens).toEqual(a.done.tokens);
  });
});

