// The model panel and the ask box in the app page: bundled model list, load with progress, the
// random-weights banner, a streamed answer with Stop, and the cached-model list with delete.
import { expect, test } from '@playwright/test';
import { ensureRuntimeModel } from './runtime-model.ts';

test.beforeAll(async () => {
  test.setTimeout(300_000);
  await ensureRuntimeModel();
});


test('model panel loads a bundled model, shows the random-weights banner, and the ask box streams an answer', async ({ page }) => {
  test.setTimeout(420_000);
  await page.goto('/');
  const panel = page.getByTestId('model-panel');
  // Rendered into the layout's side panel.
  await expect(page.locator('#side-panel').getByTestId('model-panel')).toBeVisible();
  await expect(panel.getByTestId('capabilities')).toContainText('Weights: q4');
  // Each variant's own download, the one this GPU would load marked (q4: no shader-f16 here).
  await expect(panel.getByTestId('bundled-sizes').first()).toContainText(/(^|· )q4 [\d.]+ [kMGT]?B \(this GPU\)/);
  // What each bundled model is, before anything is downloaded.
  await expect(panel.getByTestId('bundled-card').first()).toContainText(/M parameters/);
  await panel.getByRole('button', { name: 'Load Molmo2 e2e tiny (random weights)' }).click();
  await expect(panel.getByTestId('load-progress')).toBeVisible();
  await expect(panel).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });
  const banner = panel.getByTestId('random-weights-banner');
  await expect(banner).toContainText('random weights');
  await expect(banner).toContainText('npm run convert -- allenai/Molmo2-4B');
  await expect(panel.getByTestId('loaded-model')).toContainText('static KV cache');
  // What was loaded: the q4 variant on a GPU without shader-f16, with its vision encoder at 8 bits.
  await expect(panel.getByTestId('loaded-model')).toContainText('q4: int4 decoder, int8 vision encoder, float32 activations');
  await expect(panel.getByTestId('cached-model')).toHaveCount(1);
  await expect(panel.getByTestId('loaded-card')).toContainText('Random weights: it runs the whole pipeline');
  // The GPU memory check made before the download (a small model is probed even on SwiftShader).
  await expect(panel.getByTestId('gpu-fit')).toContainText(/Checked before loading: it needs about \d+ MiB of GPU memory, and the GPU allocated it\./);

  const box = page.getByTestId('ask-box');
  await box.getByLabel('Question').fill('Say something long.');
  await box.getByRole('button', { name: 'Ask' }).click();
  await expect(box).toHaveAttribute('data-status', 'running');
  // The answer streams in: some text appears while the model is still running; then Stop stops it.
  await expect(box.getByTestId('answer')).not.toBeEmpty({ timeout: 240_000 });
  if ((await box.getAttribute('data-status')) === 'running') {
    await box.getByRole('button', { name: 'Stop' }).click();
    await expect(box).toHaveAttribute('data-status', /cancelled|done/, { timeout: 120_000 });
  }
  await expect(box.getByRole('button', { name: 'Ask' })).toBeEnabled();

  await panel.getByRole('button', { name: /^Delete / }).click();
  await expect(panel.getByTestId('cached-model')).toHaveCount(0);
});
