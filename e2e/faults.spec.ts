// Faults that must not lose the user's work: the inference worker failing mid-answer is reported,
// replaced by a fresh worker, and the video, its history and the app stay usable.
import { expect, test } from '@playwright/test';
import { h264Clip } from './fixtures/clips.ts';
import { ensureRuntimeModel } from './runtime-model.ts';
import { expectRunKeptThenAnswersAgain, loadTinyByUrl } from './runtime-page.ts';

test.beforeAll(async () => {
  test.setTimeout(300_000);
  await ensureRuntimeModel();
});

test('a worker that crashes during an answer is reported and restarted; the run and the video stay', async ({ page }) => {
  test.setTimeout(600_000);
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');
  const panel = page.getByTestId('model-panel');
  await loadTinyByUrl(page);
  await expect(panel).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });

  const box = page.getByTestId('ask-box');
  await box.getByLabel('Question').fill('Describe this image.');
  await box.getByLabel('Question').press('Enter');
  await expect(box).toHaveAttribute('data-status', 'running');
  // An uncaught error inside the worker, as a crash would raise.
  const worker = page.workers().find((w) => w.url().includes('inference.worker'));
  expect(worker, 'the inference worker').toBeDefined();
  await worker!.evaluate(() => setTimeout(() => {
    throw new Error('simulated crash');
  }));

  await expect(box).toHaveAttribute('data-status', 'error', { timeout: 60_000 });
  await expect(box.getByRole('alert')).toContainText('The model worker stopped unexpectedly (Uncaught Error: simulated crash)');
  await expect(panel).toHaveAttribute('data-status', 'error');
  await expect(panel).toContainText('load the model again');
  // The run is kept, marked as failed, the video stays; a fresh worker loads the model (from the cache) and answers.
  await expectRunKeptThenAnswersAgain(page);
});
