// Playwright helpers for the runtime harness page (e2e/runtime-harness.html): open it with the
// inference worker started, load a model, ask.
import { expect, type Page } from '@playwright/test';
import type { Capabilities } from '../src/runtime/api-types.ts';
import { MODEL_URL } from './runtime-model.ts';

/**
 * Opens the harness and starts the inference worker. The first visit of a fresh dev server may reload
 * the page once (Vite optimizes the worker's dependencies when it first sees them): start again then.
 */
export async function openHarness(page: Page): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await page.goto('/e2e/runtime-harness.html');
      await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
      await page.evaluate(() => {
        window.harness.start();
        return window.harness.capabilities();
      });
      await page.waitForLoadState('networkidle');
      if (await page.evaluate(() => window.harness.started())) return;
    } catch (e) {
      if (attempt >= 2 || !/context was destroyed|navigation/i.test(String(e))) throw e;
    }
  }
}

/**
 * For benchmarks and the device check, which open the harness page themselves: waits for it, starts
 * the inference worker, and returns the adapter's capabilities with a one-line name for it.
 */
export async function startHarness(page: Page): Promise<{ caps: Capabilities; adapter: string }> {
  await page.waitForFunction(() => document.body.dataset.ready === 'true');
  const caps = await page.evaluate(() => {
    window.harness.start();
    return window.harness.capabilities();
  });
  const a = caps.adapter;
  return { caps, adapter: a ? `${a.vendor} ${a.architecture}${a.isFallbackAdapter ? ' (fallback adapter)' : ''}` : 'none' };
}

export type LoadOpts = Parameters<typeof window.harness.load>[1];
export type AskOpts = Parameters<typeof window.harness.ask>[2];
export type Visual = Parameters<typeof window.harness.ask>[1];

export const load = (page: Page, options: LoadOpts = {}, url = MODEL_URL) => page.evaluate(([u, o]) => window.harness.load({ kind: 'url', url: u }, o), [url, options] as const);
export const ask = (page: Page, question: string, visual: Visual, o: AskOpts = {}) => page.evaluate(([q, v, opts]) => window.harness.ask(q, v, opts), [question, visual, o] as const);

/** Loads the tiny model through the app's model panel by URL (other specs may bundle copies with the same name). */
export async function loadTinyByUrl(page: Page): Promise<void> {
  const field = page.getByTestId('model-panel').getByLabel('Model URL');
  await field.fill(new URL(MODEL_URL, page.url()).href);
  await field.press('Enter');
}

/**
 * After a failed answer in the app: the run is kept, marked failed, the box clip is still open; the
 * tiny model then loads again and answers a second run.
 */
export async function expectRunKeptThenAnswersAgain(page: Page): Promise<void> {
  const panel = page.getByTestId('model-panel');
  const box = page.getByTestId('ask-box');
  await expect(page.getByTestId('run')).toHaveCount(1);
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'error');
  await expect(page.getByTestId('video-info')).toContainText('box_h264.mp4');

  await loadTinyByUrl(page);
  await expect(panel).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });
  await box.getByLabel('Question').fill('Describe this image.');
  await box.getByLabel('Question').press('Enter');
  await expect(box).toHaveAttribute('data-status', 'running');
  await expect(box.getByTestId('answer')).not.toBeEmpty({ timeout: 240_000 });
  await page.keyboard.press('Escape');
  await expect(box).toHaveAttribute('data-status', /cancelled|done/, { timeout: 120_000 });
  await expect(page.getByTestId('run')).toHaveCount(2);
}

/** Adds an <input webkitdirectory id="folder"> to the harness page and picks `dir` in it. */
export async function chooseFolder(page: Page, dir: string): Promise<void> {
  await page.evaluate(() => {
    const input = document.createElement('input');
    input.type = 'file';
    input.id = 'folder';
    input.webkitdirectory = true;
    document.body.append(input);
  });
  await page.locator('#folder').setInputFiles(dir);
}
