// The built app (`vite build`, made fresh by this spec) on a plain static server, not Vite
// (tools/lib/static-server.ts), under a sub-path, as a static host serves it: relative addresses only,
// onnxruntime's wasm from the folder, the CSP <meta> and csp.json, no model shipped, and the service
// worker keeping the app for offline use. Through the UI: a clip, the tiny model from a URL on another
// origin, a one-frame question, a JSON export; then, with both servers gone and the network off, the
// app opens from the service worker after that single visit, opens a clip, lists the cached model and
// still has onnxruntime's wasm. (Loading that model offline and asking again, another ~75 s on
// SwiftShader, is shown on the dev server by privacy.spec.ts, through the same service worker.)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import type { ResultJson } from '../src/molmo2/export/result.ts';
import { CSP_DIRECTIVES, metaPolicyText } from '../src/security/csp.ts';
import { serveStatic, type StaticServer } from '../tools/lib/static-server.ts';
import { CLIP, h264Clip } from './fixtures/clips.ts';
import { recordingProxy } from './fixtures/servers.ts';
import { ensureRuntimeModel, MODEL_DIR, MODEL_NAME, ROOT } from './runtime-model.ts';

// Deep enough that any address taken from the host's root (/sw.js, /assets/…) misses.
const SUB = '/some/sub/path/';
const QUESTION = 'Point to the box.';

let dist = '';
let app: StaticServer | undefined;
let models: StaticServer | undefined;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  // Converted into public/models/ first, so the build below shows that it leaves models out.
  await ensureRuntimeModel();
  dist = mkdtempSync(join(tmpdir(), 'molmo2-dist-'));
  const built = spawnSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--outDir', dist, '--emptyOutDir', '--logLevel', 'warn'], { cwd: ROOT, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`vite build failed:\n${built.stdout}\n${built.stderr}`);
  app = await serveStatic(dist, { base: SUB });
  models = await serveStatic(MODEL_DIR, { cors: true });
});

test.afterAll(async () => {
  await app?.close();
  await models?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

test('the build is one self-contained folder: relative addresses, the wasm, csp.json, the service worker, no model', () => {
  const html = readFileSync(join(dist, 'index.html'), 'utf8');
  const refs = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  expect(refs.length).toBeGreaterThan(0);
  for (const ref of refs) expect(ref, 'index.html refers to its files relatively').toMatch(/^\.\//);
  expect(html).toContain('http-equiv="Content-Security-Policy"');
  expect(JSON.parse(readFileSync(join(dist, 'csp.json'), 'utf8'))).toEqual(CSP_DIRECTIVES);
  expect(existsSync(join(dist, 'sw.js'))).toBe(true);
  expect(readdirSync(join(dist, 'assets')).filter((f) => f.endsWith('.wasm'))).toEqual([
    expect.stringMatching(/^ort-wasm-simd-threaded\.asyncify-.+\.wasm$/),
    expect.stringMatching(/^ort-wasm-simd-threaded\.jspi-.+\.wasm$/),
  ]);
  // public/models/ holds the test model right now; the build ships only an empty list.
  expect(existsSync(join(ROOT, 'public', 'models', MODEL_NAME, 'manifest.json'))).toBe(true);
  expect(readdirSync(join(dist, 'models'))).toEqual(['index.json']);
  expect(JSON.parse(readFileSync(join(dist, 'models', 'index.json'), 'utf8'))).toEqual([]);
  // The service worker's list of what to keep offline: the page and every script, not the wasm.
  const precache = JSON.parse(readFileSync(join(dist, 'precache.json'), 'utf8')) as string[];
  expect(precache).toEqual(expect.arrayContaining(['./', 'index.html', 'csp.json', ...readdirSync(join(dist, 'assets')).filter((f) => f.endsWith('.js')).map((f) => `assets/${f}`)]));
  expect(precache.filter((f) => f.endsWith('.wasm') || f === 'sw.js')).toEqual([]);
});

/**
 * Asks about the shown frame alone, with the smallest answer limit, and stops the answer at its first
 * text (decoding on SwiftShader takes seconds a token); returns the answer as it stands then.
 */
async function askAboutThisFrame(page: Page): Promise<string> {
  const box = page.getByTestId('ask-box');
  await box.getByRole('radio', { name: 'This frame' }).check();
  await box.getByTestId('answer-limit').selectOption('64');
  await box.getByLabel('Question').fill(QUESTION);
  await expect(box.getByTestId('ask-sends')).toContainText('Sends: frame 1 at 00:00.000 ·');
  await box.getByRole('button', { name: 'Ask' }).click();
  await expect(box.getByTestId('answer')).not.toBeEmpty({ timeout: 240_000 });
  if ((await box.getAttribute('data-status')) === 'running') await box.getByRole('button', { name: 'Stop' }).click();
  await expect(box).toHaveAttribute('data-status', /cancelled|done/, { timeout: 120_000 });
  return (await box.getByTestId('answer').textContent()) ?? '';
}

test('from a sub-path of a static server: video, model from a URL, question, export; then offline after that one visit', async ({ browser }) => {
  test.setTimeout(600_000);
  const appServer = app!;
  const modelServer = models!;
  // Every request that would leave this machine (a CDN, say) is recorded and refused.
  const proxy = await recordingProxy();
  const context = await browser.newContext({ proxy: { server: proxy.origin } });
  try {
    const page = await context.newPage();
    if (process.env.DEBUG_E2E) page.on('console', (m) => console.log('[page]', m.text()));
    const first = await page.goto(appServer.url);
    expect(first?.fromServiceWorker()).toBe(false);
    // The host sends no policy: the page's <meta> carries it.
    expect(first?.headers()['content-security-policy']).toBeUndefined();
    expect(await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content')).toBe(metaPolicyText());
    // The service worker beside index.html, for that folder only.
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    expect(scope).toBe(appServer.url);
    await page.waitForFunction(() => Boolean(navigator.serviceWorker.controller));

    await page.getByTestId('video-input').setInputFiles(h264Clip());
    await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');

    const panel = page.getByTestId('model-panel');
    await expect(panel).toContainText('No converted model on this server');
    await panel.getByLabel('Model URL').fill(modelServer.url);
    await panel.getByLabel('Model URL').press('Enter');
    await expect(panel).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });
    await expect(panel.getByTestId('cached-model')).toHaveCount(1);

    const answer = await askAboutThisFrame(page);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-bar').getByRole('button', { name: 'Export' }).click()]);
    expect(download.suggestedFilename()).toMatch(/\.json$/);
    const result = JSON.parse(readFileSync(await download.path(), 'utf8')) as ResultJson;
    expect(['cancelled', 'complete']).toContain(result.status);
    expect(result.rawText).toBe(answer);
    expect(result.query.text).toBe(QUESTION);
    expect(result.video).toMatchObject({ name: 'box_h264.mp4', width: CLIP.width, height: CLIP.height, sampledFrames: [0] });

    // Where everything came from: the app's files from its folder on the static server (nothing from
    // the host's root), onnxruntime's wasm among them; the model from its host; nothing else anywhere.
    expect(appServer.log.filter((r) => !r.path.startsWith(SUB))).toEqual([]);
    expect(appServer.log.filter((r) => r.status >= 400)).toEqual([]);
    const wasm = appServer.log.find((r) => /^\/some\/sub\/path\/assets\/ort-wasm-simd-threaded\.(jspi|asyncify)-[\w-]+\.wasm$/.test(r.path) && r.status === 200);
    expect(wasm, 'onnxruntime fetched its wasm from the folder').toBeDefined();
    expect(modelServer.log.some((r) => r.path === '/manifest.json' && r.status === 200)).toBe(true);
    expect(proxy.requests).toEqual([]);

    // Offline: both servers gone and the network off. The page comes from the service worker (with
    // the policy it adds), after this one visit, and so do the decode and inference workers.
    await appServer.close();
    await modelServer.close();
    app = models = undefined;
    await context.setOffline(true);
    const again = await page.reload();
    expect(again?.fromServiceWorker()).toBe(true);
    expect(again?.headers()['content-security-policy']).toContain("connect-src 'self'");
    await expect(page.getByRole('heading', { name: 'Molmo2 Web' })).toBeVisible();
    await page.getByTestId('video-input').setInputFiles(h264Clip());
    await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');
    // The inference worker answers: the device check and the browser's cached model.
    await expect(panel.getByTestId('capabilities')).toContainText('Weights:');
    await expect(panel.getByTestId('cached-model')).toHaveCount(1);
    // onnxruntime's wasm, whole, from the service worker's cache.
    const wasmPath = wasm!.path.slice(SUB.length);
    const bytes = await page.evaluate(async (url) => {
      const res = await fetch(url);
      return { type: res.headers.get('Content-Type'), length: (await res.arrayBuffer()).byteLength };
    }, wasmPath);
    expect(bytes).toEqual({ type: 'application/wasm', length: statSync(join(dist, wasmPath)).size });
    expect(proxy.requests).toEqual([]);
  } finally {
    await context.close();
    await proxy.close();
  }
});
