// Optional suite: the real clips in ../shared/media (when that folder exists) open, decode and sample
// as sampleTimes says over the container's own timestamps (read independently with ffprobe).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { rangeSampleTimes } from '../src/molmo2/video.ts';

const mediaDir = join(import.meta.dirname, '..', '..', 'shared', 'media');
const clips = existsSync(mediaDir) ? readdirSync(mediaDir).filter((f) => /\.(mp4|mov|webm|mkv)$/i.test(f)) : [];

/** The video stream's packet timestamps in presentation order, as ffprobe reads the container. */
function containerTimestamps(path: string): number[] {
  const out = execFileSync(process.env.FFPROBE_PATH ?? 'ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', path], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(',')[0].trim())
    .filter((l) => l !== '' && l !== 'N/A')
    .map(Number)
    .sort((a, b) => a - b);
}

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
      const stamps = containerTimestamps(join(mediaDir, clip));
      const text = await page.getByTestId('position').textContent();
      const total = Number(/\/ (\d+)/.exec(text ?? '')![1]);
      expect(total).toBe(stamps.length);
      const marks = await page.getByTestId('sample-mark').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-time'))));
      const expected = rangeSampleTimes(stamps[0], stamps.at(-1)!, { maxFrames: 64 });
      expect(marks.map((t) => t.toFixed(3))).toEqual(expected.map((t) => t.toFixed(3)));
    });
  }
});
