// Privacy and offline use, enforced and measured: the Content-Security-Policy (header, <meta>, and
// the service worker's per-worker policy with the chosen model host), a full session whose every
// request stays on this machine, and the app plus a cached model working with the server gone.
import { spawn, type ChildProcess } from 'node:child_process';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { metaPolicyText, policyText } from '../src/security/csp.ts';
import { h264Clip } from './fixtures/clips.ts';
import { recordingProxy, staticCorsServer } from './fixtures/servers.ts';
import { ensureRuntimeModel, MODEL_DIR, MODEL_URL, ROOT } from './runtime-model.ts';

test.beforeAll(async () => {
  test.setTimeout(300_000);
  await ensureRuntimeModel();
});

const isLocal = (url: string) => /^(blob:|data:)/.test(url) || /^https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(url);

async function controlled(page: Page) {
  await page.waitForFunction(() => navigator.serviceWorker?.controller !== null && navigator.serviceWorker?.controller !== undefined);
}

function recordRequests(context: BrowserContext): string[] {
  const urls: string[] = [];
  context.on('request', (r) => urls.push(r.url()));
  return urls;
}

async function streamAnswerAndStop(page: Page) {
  const box = page.getByTestId('ask-box');
  await box.getByLabel('Question').fill('Point to the box.');
  await box.getByLabel('Question').press('Enter');
  await expect(box.getByTestId('answer')).not.toBeEmpty({ timeout: 240_000 });
  if ((await box.getAttribute('data-status')) === 'running') await page.keyboard.press('Escape');
  await expect(box).toHaveAttribute('data-status', /cancelled|done/, { timeout: 120_000 });
}

test('the security policy is sent as a header and a meta tag, and blocks requests to other hosts', async ({ page }) => {
  const proxy = await recordingProxy();
  try {
    const res = await page.goto('/');
    expect(res?.headers()['content-security-policy']).toBe(policyText());
    expect(await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content')).toBe(metaPolicyText());
    expect(policyText()).toContain("connect-src 'self';");
    const blocked = await page.evaluate(async (target) => {
      const violations: string[] = [];
      const reported = new Promise<void>((r) =>
        document.addEventListener('securitypolicyviolation', (e) => {
          violations.push(`${e.violatedDirective} ${e.blockedURI}`);
          r();
        }),
      );
      const fetched = await fetch(`${target}/x`).then(
        () => 'fetched',
        () => 'refused',
      );
      // The violation is reported as an event after the refusal: wait for it.
      if (fetched === 'refused') await reported;
      return { fetched, violations };
    }, proxy.origin.replace('127.0.0.1', 'localhost'));
    expect(blocked.fetched).toBe('refused');
    expect(blocked.violations.join()).toMatch(/connect-src/);
  } finally {
    await proxy.close();
  }
});

test('a full session (video, model from a chosen host, question, export) sends nothing anywhere else', async ({ browser }) => {
  test.setTimeout(600_000);
  const proxy = await recordingProxy();
  const host = await staticCorsServer(MODEL_DIR);
  const context = await browser.newContext({ proxy: { server: proxy.origin } });
  const urls = recordRequests(context);
  try {
    const page = await context.newPage();
    if (process.env.DEBUG_E2E) page.on('console', (m) => console.log('[page]', m.text()));
    await page.goto('/');
    await controlled(page);
    await page.getByTestId('video-input').setInputFiles(h264Clip());
    await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');

    const panel = page.getByTestId('model-panel');
    await panel.getByLabel('Model URL').fill(`${host.origin}/`);
    await panel.getByLabel('Model URL').press('Enter');
    await expect(panel).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });
    // The worker's policy now names the chosen host, and only it.
    const workerPolicy = await page.evaluate(async () => (await fetch('/workers/inference.worker.ts')).headers.get('content-security-policy'));
    expect(workerPolicy).toBe(policyText([host.origin]));

    await streamAnswerAndStop(page);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-bar').getByRole('button', { name: 'Export' }).click()]);
    expect(download.suggestedFilename()).toMatch(/\.json$/);

    expect(proxy.requests).toEqual([]);
    const foreign = urls.filter((u) => !isLocal(u));
    expect(foreign).toEqual([]);
    expect(urls.some((u) => u.startsWith(host.origin))).toBe(true);

    // The proxy does see what would leave the machine (so the empty list above means something).
    await page.goto('http://third-party.example/').catch(() => {});
    expect(proxy.requests.length).toBeGreaterThan(0);
  } finally {
    await context.close();
    await host.close();
    await proxy.close();
  }
});

function startDevServer(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['node_modules/vite/bin/vite.js', '--port', String(port), '--strictPort', '--host', '127.0.0.1'], { cwd: ROOT, stdio: 'pipe' });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('dev server did not start')), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      if (String(d).includes(`${port}`)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => reject(new Error(`dev server exited with ${code}`)));
  });
}

test('after one online session the app and its cached model work with the server stopped and the network off', async ({ browser }) => {
  test.setTimeout(600_000);
  const port = 5300 + (process.pid % 100); // its own dev server, away from the suite's
  const base = `http://127.0.0.1:${port}`;
  let server: ChildProcess | undefined = await startDevServer(port);
  const proxy = await recordingProxy();
  const context = await browser.newContext({ proxy: { server: proxy.origin } });
  try {
    const page = await context.newPage();
    await page.goto(base);
    await controlled(page);
    // Online: the page now runs under the service worker; load the model once (cached in OPFS).
    await page.reload();
    const panel = page.getByTestId('model-panel');
    // By URL: other specs may add more bundled copies of the tiny model with the same name.
    await panel.getByLabel('Model URL').fill(`${base}${MODEL_URL}`);
    await panel.getByLabel('Model URL').press('Enter');
    await expect(panel).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });
    await expect(panel.getByTestId('cached-model')).toHaveCount(1);

    server.kill();
    await new Promise((r) => server!.once('exit', r));
    server = undefined;
    await context.setOffline(true);
    await expect(page.request.get(`${base}${MODEL_URL}manifest.json`)).rejects.toThrow();

    await page.reload();
    await expect(page.getByRole('heading', { name: 'Molmo2 Web' })).toBeVisible();
    await page.getByTestId('video-input').setInputFiles(h264Clip());
    await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');
    await expect(panel.getByTestId('cached-model')).toHaveCount(1);
    await panel.getByTestId('cached-model').getByRole('button', { name: 'Load', exact: true }).click();
    await expect(panel).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });
    await streamAnswerAndStop(page);
    expect(proxy.requests).toEqual([]);
  } finally {
    await context.close();
    server?.kill();
    await proxy.close();
  }
});
