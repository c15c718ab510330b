// Playwright helpers for the runtime harness page (e2e/runtime-harness.html): open it with the
// inference worker started, load a model, ask.
import { expect, type Page } from '@playwright/test';
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
