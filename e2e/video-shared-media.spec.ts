// Optional suite: the real clips in ../shared/media (when that folder exists) open, decode and sample
// as sampleTimes says over the container's own timestamps.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { sampleTimes } from '../src/molmo2/video.ts';

const mediaDir = join(import.meta.dirname, '..', '..', 'shared', 'media');
const clips = existsSync(mediaDir) ? readdirSync(mediaDir).filter((f) => /\.(mp4|mov|webm|mkv)$/i.test(f)) : [];

test.describe('shared media clips', () => {
  test.skip(clips.length === 0, 'no ../shared/media folder');
  for (const clip of clips) {
    test(clip, async ({ page }) => {
      // Chromium's H.264 decoder stops at this stream's malformed IDR slices ("Error during flush");
      // ffmpeg conceals them. The app shows a clear error; decoding past such slices is still to do.
      test.fail(clip === 'opencv_box.mp4', 'decoder rejects malformed IDR slices');
      if (clip === 'opencv_box.mp4') test.setTimeout(30_000);
      await page.goto('/');
      await page.getByTestId('video-input').setInputFiles(join(mediaDir, clip));
      await expect(page.getByTestId('video-info')).toContainText(clip, { timeout: 20_000 });
      await expect(page.getByTestId('video-error')).toHaveCount(0);
      await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');
      // Select the whole clip: its sample marks follow sampleTimes over the last frame's timestamp.
      await page.keyboard.press('Home');
      await page.keyboard.press('[');
      await page.keyboard.press('End');
      await page.keyboard.press(']');
      const text = await page.getByTestId('position').textContent();
      const total = Number(/\/ (\d+)/.exec(text ?? '')![1]);
      expect(total).toBeGreaterThan(1);
      const marks = await page.getByTestId('sample-mark').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-time'))));
      const end = marks.at(-1)!;
      expect(marks.map((t) => t.toFixed(3))).toEqual(sampleTimes(end, { maxFrames: 64 }).map((t) => t.toFixed(3)));
    });
  }
});
