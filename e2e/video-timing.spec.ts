// Measurement, not a timed test: drop → first frame and → full filmstrip for a 10 s 720p H.264 clip.
// Runs only with BENCH=1 (e.g. `BENCH=1 npx playwright test e2e/video-timing.spec.ts`).
import { expect, test } from '@playwright/test';
import { testsrc720pClip } from './fixtures/clips.ts';

test('drop to first frame and to full filmstrip, 10 s 720p H.264', async ({ page }) => {
  test.skip(!process.env.BENCH, 'set BENCH=1 to measure');
  const clip = testsrc720pClip();
  await page.goto('/');
  const started = Date.now();
  await page.getByTestId('video-input').setInputFiles(clip);
  await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');
  const firstFrame = Date.now() - started;
  await expect(page.getByTestId('filmstrip').locator('img')).toHaveCount(16);
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=filmstrip] img')].every((i) => (i as HTMLImageElement).complete));
  const filmstrip = Date.now() - started;
  console.log(`10 s 720p H.264 (300 frames): first frame ${firstFrame} ms, full filmstrip (16 thumbnails) ${filmstrip} ms`);
});
