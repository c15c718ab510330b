// "Answer on a server" against a small OpenAI-compatible server on 127.0.0.1 that records every
// request (tools/lib/openai-test-server.ts): nothing reaches it before the user confirms or after
// they turn it off (the policies refuse it, not only the app); once on, a range question sends one
// request with the sampled frames as JPEG, their clip times and the question, and the answer is
// drawn and listed like a local one; a server error or a stop keeps the work and the app usable.
import { createRequire } from 'node:module';
import type { AxeResults } from 'axe-core';
import { expect, test, type Page } from '@playwright/test';
import { policyText } from '../src/security/csp.ts';
import { trackStyle } from '../src/overlay/overlay-model.ts';
import { readChatRequest, startOpenAiTestServer, type OpenAiTestServer } from '../tools/lib/openai-test-server.ts';
import { CLIP } from './fixtures/clips.ts';
import { expectMarker, hex, installBackend, openClip, shownFrame } from './fixtures/grounding-page.ts';

const MODEL = 'allenai/Molmo2-8B';
// The range 0.5–2.9 s of the generated clip is sampled at clip times 0, 0.5, …, 2.0, 2.4 s → frames
// 5, 10, 15, 20, 25, 29; the white box's centre in frame f is (10 f + 10, 120).
const SAMPLED_FRAMES = [5, 10, 15, 20, 25, 29];
const CLIP_TIMES = [0, 0.5, 1, 1.5, 2, 2.4];
const boxX = (f: number) => 10 * f + CLIP.boxW / 2;
const boxY = CLIP.boxY + CLIP.boxH / 2;
const norm = (px: number, size: number) => String(Math.round((px * 1000) / size)).padStart(3, '0');
const COLOR_1 = hex(trackStyle(1).color);

/** One track on the box, at the times the server received (what Molmo2 would answer). */
function trackTheBox(body: unknown): string {
  const q = readChatRequest(body);
  const groups = q.frames.map((f, k) => `${(f.timeS ?? 0).toFixed(1)} 1 ${norm(boxX(SAMPLED_FRAMES[k]), CLIP.width)} ${norm(boxY, CLIP.height)}`);
  return `<tracks coords="${groups.join(';')}">box</tracks>`;
}

/** The requests that carry something (the browser's CORS preflights carry nothing). */
const sent = (s: OpenAiTestServer) => s.requests.filter((r) => r.method !== 'OPTIONS');

/** Width and height from a JPEG's start-of-frame marker. */
function jpegSize(b: Buffer): { width: number; height: number } | undefined {
  if (b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  for (let i = 2; i + 9 < b.length; ) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1];
    if (marker >= 0xc0 && marker <= 0xc2) return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
    i += 2 + b.readUInt16BE(i + 2);
  }
  return undefined;
}

async function open(page: Page) {
  await openClip(page);
  await page.waitForFunction(() => Boolean(navigator.serviceWorker?.controller));
}

async function selectRange(page: Page) {
  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('Home');
  for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
  await shownFrame(page, 5);
  await page.keyboard.press('[');
  await page.keyboard.press('End');
  await page.keyboard.press(']');
  await expect(page.getByTestId('selection')).toContainText('6 sampled frames');
}

/** Fills in the server and flips the switch: the confirmation opens (nothing is on yet). */
async function askToTurnOn(page: Page, url: string) {
  const panel = page.getByTestId('server-panel');
  // Folded to one line until opened.
  if (!(await panel.locator('details').evaluate((d) => (d as HTMLDetailsElement).open))) await panel.getByText('Answer on a server:').click();
  await panel.getByLabel('Server address').fill(url);
  await panel.getByLabel('Model id').fill(MODEL);
  await panel.getByRole('switch', { name: 'Answer on a server' }).click();
  return page.getByRole('dialog', { name: /^Send frames to 127\.0\.0\.1:\d+\?$/ });
}

async function turnOn(page: Page, url: string) {
  const dialog = await askToTurnOn(page, url);
  await dialog.getByRole('button', { name: /^Send frames to / }).click();
  await expect(page.getByTestId('server-panel')).toHaveAttribute('data-on', 'true');
}

/** The policy the service worker gives a worker script (what that worker may connect to). */
const workerPolicy = (page: Page, path: string) => page.evaluate(async (p) => (await fetch(p)).headers.get('content-security-policy'), path);

/** A question straight from a fresh server worker, bypassing the app's switch: only its policy can stop it. */
const askFromFreshWorker = (page: Page, baseUrl: string) =>
  page.evaluate(async (baseUrl) => {
    const { startServerAskWorker } = (await import(String('/workers/server-ask-api.ts'))) as typeof import('../workers/server-ask-api.ts');
    const w = startServerAskWorker();
    try {
      await w.api.ask({ server: { baseUrl, model: 'allenai/Molmo2-8B' }, question: 'Point to the box.', maxNewTokens: 8, mode: 'images', frames: [] });
      return 'answered';
    } catch (e) {
      return (e as Error).message;
    } finally {
      w.terminate();
    }
  }, baseUrl);

test('before the user confirms and after they turn it off, nothing reaches the server: the policies refuse it', async ({ page }) => {
  const server = await startOpenAiTestServer({ models: [MODEL] });
  const origin = new URL(server.url).origin;
  try {
    await open(page);
    // Off: no worker may reach the server, and a question goes to the model on this device.
    expect(await workerPolicy(page, '/workers/server-ask.worker.ts')).toBe(policyText());
    expect(await askFromFreshWorker(page, server.url)).toMatch(/security policy did not allow the request to 127\.0\.0\.1:\d+/);
    await expect(page.getByTestId('ask-box').getByRole('button', { name: 'Ask' })).toBeDisabled();

    // Declined: still off, still refused.
    const dialog = await askToTurnOn(page, server.url);
    await expect(dialog).toContainText('the frames it is about (pictures from your video)');
    await expect(dialog).toContainText('Nothing else is sent');
    await expect(dialog).toContainText('You can turn this off at any time.');
    await dialog.getByRole('button', { name: 'Keep everything on this device' }).click();
    await expect(dialog).toBeHidden();
    await expect(page.getByTestId('server-panel')).toHaveAttribute('data-on', 'false');
    await expect(page.getByTestId('ask-where')).toHaveCount(0);
    expect(await workerPolicy(page, '/workers/server-ask.worker.ts')).toBe(policyText());

    // On: the server worker's policy names the server; every other worker's and the page's do not.
    await turnOn(page, server.url);
    expect(await workerPolicy(page, '/workers/server-ask.worker.ts')).toBe(policyText([origin]));
    expect(await workerPolicy(page, '/workers/inference.worker.ts')).toBe(policyText());
    expect(await workerPolicy(page, '/workers/decode.worker.ts')).toBe(policyText());
    const fromPage = await page.evaluate((u) => fetch(`${u}/models`).then(() => 'fetched', () => 'refused'), server.url);
    expect(fromPage).toBe('refused');
    expect(sent(server)).toEqual([]);

    // Off again: the origin is gone from the policy, and a question runs on this device.
    await page.getByTestId('server-panel').getByRole('switch', { name: 'Answer on a server' }).click();
    await expect(page.getByTestId('server-panel')).toHaveAttribute('data-on', 'false');
    expect(await workerPolicy(page, '/workers/server-ask.worker.ts')).toBe(policyText());
    expect(await askFromFreshWorker(page, server.url)).toMatch(/security policy did not allow/);
    await installBackend(page, ['<points coords="1 1 500 500">box</points>']);
    const box = page.getByTestId('ask-box');
    await box.getByLabel('Question').fill('Point to the box.');
    await box.getByLabel('Question').press('Enter');
    await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
    expect(await page.evaluate(() => (window as unknown as { scripted: { asked: unknown[] } }).scripted.asked.length)).toBe(1);
    expect(sent(server)).toEqual([]);
  } finally {
    await server.close();
  }
});

test('a range question on a server: one request with the sampled frames as JPEG, their clip times and the question; the answer drawn and listed like a local one', async ({ page }) => {
  const server = await startOpenAiTestServer({ models: [MODEL], answer: trackTheBox });
  try {
    await open(page);
    await selectRange(page);
    // No model on this device: the server alone answers.
    await turnOn(page, server.url);
    const host = new URL(server.url).host;
    const box = page.getByTestId('ask-box');
    await expect(box.getByTestId('ask-where')).toHaveText(`Runs on ${host} — frames leave this device`);
    await expect(box.getByTestId('ask-sends')).toContainText('6 frames as video');
    await box.getByLabel('Question').fill('Track the box.');
    await box.getByLabel('Question').press('Enter');
    await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');

    // (a) exactly one request: six JPEG frames of the clip's size, at clip times from the range start, and the question.
    const requests = sent(server);
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/chat/completions']);
    const body = requests[0].body as { model: string; max_tokens: number };
    expect(body.model).toBe(MODEL);
    const q = readChatRequest(body);
    expect(q.mode).toBe('video');
    expect(q.question).toBe('Track the box.');
    expect(q.frames.map((f) => f.timeS)).toEqual(CLIP_TIMES);
    for (const f of q.frames) expect(jpegSize(f.bytes)).toEqual({ width: CLIP.width, height: CLIP.height });
    expect(requests[0].headers.authorization).toBeUndefined();
    expect(requests[0].headers.cookie).toBeUndefined();

    // (b) the answer as a local one: a run named for the server's model, points drawn on the right frames, listed, in a swimlane.
    await expect(page.getByTestId('announcement')).toContainText('Answered: 6 points');
    await expect(box.getByTestId('answer-points').getByRole('listitem')).toHaveCount(6);
    await expect(box.getByTestId('ask-stats')).toContainText(`Answered by ${host} in`);
    const run = await page.evaluate(async () => {
      const { useResultsStore } = (await import(String('/src/state/results-store.ts'))) as typeof import('../src/state/results-store.ts');
      const r = useResultsStore.getState().runs[0].result;
      return { model: r.model, frames: r.points.map((p) => p.frame), clipStartS: r.query.clipStartS };
    });
    expect(run).toEqual({ model: { id: MODEL, dtype: 'server' }, frames: SAMPLED_FRAMES, clipStartS: 0.5 });
    await expect(page.getByTestId('swimlane')).toHaveCount(1);
    await expect(page.getByTestId('swimlane').first().getByTestId('lane-marker')).toHaveCount(6);
    await page.getByTestId('swimlane').first().locator('[data-frame="20"]').click();
    await shownFrame(page, 20);
    await expectMarker(page, boxX(20), boxY, COLOR_1);
  } finally {
    await server.close();
  }
});

test('a server error gives a plain message and keeps the work; Stop ends a slow answer; the next question is answered', async ({ page }) => {
  const server = await startOpenAiTestServer({ models: [MODEL] });
  try {
    await open(page);
    await turnOn(page, server.url);
    const host = new URL(server.url).host;
    const box = page.getByTestId('ask-box');
    const ask = async (question: string) => {
      await box.getByLabel('Question').fill(question);
      await box.getByLabel('Question').press('Enter');
    };

    server.queueFaults({ kind: 'status', status: 500, body: JSON.stringify({ error: { message: 'CUDA out of memory' } }) });
    await ask('Point to the box.');
    await expect(box.getByTestId('ask-error')).toHaveText(`${host} did not answer the question: HTTP 500 Internal Server Error: CUDA out of memory`);
    await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'error');
    // The question and the video stay; nothing was lost.
    await expect(box.getByLabel('Question')).toHaveValue('Point to the box.');
    await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');

    // A slow server: the stage names it, and Esc stops the question at once.
    server.queueFaults({ kind: 'slow', ms: 20_000 });
    await ask('Point to the box again.');
    await expect(page.getByTestId('ask-stage')).toContainText(`Waiting for ${host}`);
    await page.keyboard.press('Escape');
    await expect(box).toHaveAttribute('data-status', 'cancelled', { timeout: 5_000 });

    // The next question is answered (the test server points once per frame it received).
    await ask('Point to the box.');
    await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
    await expect(page.getByTestId('run')).toHaveCount(3);
    await expect(box.getByTestId('answer-points').getByRole('listitem')).toHaveCount(1);
    expect(sent(server)).toHaveLength(3);
  } finally {
    await server.close();
  }
});

test.describe('readable', () => {
  // Injecting axe needs an inline script, which the page's policy forbids (the tests above rely on it).
  test.use({ bypassCSP: true });

  async function violations(page: Page): Promise<string[]> {
    if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
    return page.evaluate(async () => {
      const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<AxeResults> } }).axe;
      const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
      return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`);
    });
  }

  test('axe finds no WCAG A/AA violation in the setting, its confirmation, or the ask box on a server; a bad address is refused in words', async ({ page }) => {
    await open(page);
    await askToTurnOn(page, 'ftp://gpu-box/v1');
    await expect(page.getByTestId('server-error')).toHaveText('The address must start with http:// or https://, not ftp://.');
    await expect(page.getByRole('dialog')).toHaveCount(0);
    expect(await violations(page), 'the setting with a message').toEqual([]);
    const dialog = await askToTurnOn(page, 'http://127.0.0.1:9/v1');
    await expect(dialog).toBeVisible();
    // The safe answer has the focus: Enter alone sends nothing anywhere.
    await expect(dialog.getByRole('button', { name: 'Keep everything on this device' })).toBeFocused();
    expect(await violations(page), 'the confirmation').toEqual([]);
    await dialog.getByRole('button', { name: /^Send frames to / }).click();
    await expect(page.getByTestId('ask-where')).toHaveText('Runs on 127.0.0.1:9 — frames leave this device');
    expect(await violations(page), 'the setting on').toEqual([]);
  });
});
