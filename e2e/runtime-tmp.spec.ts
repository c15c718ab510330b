import { expect, test } from '@playwright/test';
import { ensureRuntimeModel, MODEL_URL } from './runtime-model.ts';
test('perf2', async ({ page }) => {
  test.setTimeout(900_000);
  await ensureRuntimeModel();
  await page.goto('/e2e/runtime-harness.html');
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  await page.evaluate(() => window.harness.start());
  for (const dtype of ['fp32', 'q4'] as const) {
    const r = await page.evaluate(([url, dtype]) => window.harness.load({ kind: 'url', url }, { dtype, warmUp: false }), [MODEL_URL, dtype] as const);
    console.log(dtype, r.model.kvCache, JSON.stringify(r.model.timings));
    const img = { width: 64, height: 48, rgba: Array.from({ length: 64 * 48 * 4 }, (_, i) => (i * 37) & 255) };
    for (let k = 0; k < 2; k++) {
      const a = await page.evaluate((img) => window.harness.ask('What is this?', { kind: 'images', images: [img] }, { maxNewTokens: 3 }), img);
      console.log(dtype, k, JSON.stringify(a.done.timings));
    }
  }
});
