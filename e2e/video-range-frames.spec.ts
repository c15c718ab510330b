// The frames a range question sends to the model are the frames presented at its sample times (the
// last frame whose timestamp is ≤ t), read back from the pixels of the frames the page hands to the
// inference worker. The box clips carry their frame index in the box position (left = step · index);
// the real clips in ../shared/media (optional, when that folder exists) are compared with ffmpeg's
// frames at the same times.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { sampleTimes } from '../src/molmo2/video.ts';
import { BOX_1FPS, BOX_4FPS, BOX_NTSC, CLIP, boxClip, clipFps, h264Clip, vp9Clip, type BoxClip } from './fixtures/clips.ts';
import { ffmpegFrameTimes, ffmpegLumaGrids } from './fixtures/ffmpeg-frames.ts';
import { gridDistance } from './fixtures/luma-grid.ts';
import { askAboutRange, installCapturingBackend, selectRangeToEnd, type SentFrame } from './fixtures/sent-frames.ts';

/** A clip's frame rate, frame count and marker geometry. */
type Frames = Omit<BoxClip, 'name' | 'codec'>;

const BOX_10FPS: Frames = { rate: '10', frames: CLIP.frames, step: CLIP.step, width: CLIP.width };

async function openClip(page: Page, path: string) {
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(path);
  await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');
  await installCapturingBackend(page, { boxRow: CLIP.boxY + CLIP.boxH / 2 });
}

/**
 * What the sent frames must be for a range from `startFrame` to the last frame: the clip times of
 * sampleTimes and, for each, the frame presented then — counted here from the clip's constant frame
 * rate (frame k at k / fps), independently of the app's own lookup.
 */
function expected(clip: Frames, startFrame: number, maxFrames: number) {
  const fps = clipFps(clip);
  const start = startFrame / fps;
  const end = (clip.frames - 1) / fps;
  const times = sampleTimes(end - start, { maxFrames });
  return { times, frames: times.map((t) => Math.floor((start + t) * fps + 1e-6)) };
}

function checkSent(sent: SentFrame[], clip: Frames, want: { times: number[]; frames: number[] }) {
  expect(sent.length).toBe(want.times.length);
  sent.forEach((f, k) => {
    expect(f.timestamp).toBeCloseTo(want.times[k], 6);
    expect([f.width, f.height]).toEqual([clip.width, CLIP.height]);
    // The pixels show the frame presented at the sample time, and the frame's key names that frame.
    expect({ time: want.times[k], frame: Math.round(f.boxLeft / clip.step) }).toEqual({ time: want.times[k], frame: want.frames[k] });
    expect(Math.abs(f.boxLeft - clip.step * want.frames[k])).toBeLessThanOrEqual(1);
    expect(Number(f.key.split('#').at(-1))).toBe(want.frames[k]);
  });
}

for (const [name, path] of [
  ['MP4/H.264', h264Clip],
  ['WebM/VP9', vp9Clip],
] as const) {
  test(`${name} at 10 fps, range from frame 5: every sample time falls on a frame timestamp`, async ({ page }) => {
    await openClip(page, path());
    await selectRangeToEnd(page, 5);
    const want = expected(BOX_10FPS, 5, 64);
    expect(want.frames).toEqual([5, 10, 15, 20, 25, 29]);
    checkSent(await askAboutRange(page, 1), BOX_10FPS, want);

    // A frame cap of 4 spreads the times uniformly: 0.5, 1.3, 2.1, 2.9 s, frames 5, 13, 21, 29.
    await page.getByLabel('Frame cap').fill('4');
    const capped = expected(BOX_10FPS, 5, 4);
    expect(capped.frames).toEqual([5, 13, 21, 29]);
    checkSent(await askAboutRange(page, 2), BOX_10FPS, capped);
  });
}

test('MP4/H.264 at 4 fps, range from frame 1: sample times on every other frame', async ({ page }) => {
  await openClip(page, boxClip(BOX_4FPS));
  await selectRangeToEnd(page, 1);
  const want = expected(BOX_4FPS, 1, 64);
  expect(want.frames).toEqual(Array.from({ length: 20 }, (_, k) => 2 * k + 1));
  checkSent(await askAboutRange(page, 1), BOX_4FPS, want);
});

test('MP4/H.264 at 1 fps: a frame presented at two sample times is sent twice', async ({ page }) => {
  await openClip(page, boxClip(BOX_1FPS));
  await selectRangeToEnd(page, 0);
  const want = expected(BOX_1FPS, 0, 64);
  expect(want.frames).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7]);
  checkSent(await askAboutRange(page, 1), BOX_1FPS, want);
});

test('MP4/H.264 at 29.97 fps: sample times fall between frames, just short of the next one', async ({ page }) => {
  await openClip(page, boxClip(BOX_NTSC));
  await selectRangeToEnd(page, 0);
  // 0.5 s lies 0.5 ms before frame 15 (0.5005 s): frame 14 is presented; the nearest frame would be 15.
  const want = expected(BOX_NTSC, 0, 64);
  expect(want.frames).toEqual([0, 14, 29, 44, 59, 74, 89, 104, 119, 134, 149]);
  checkSent(await askAboutRange(page, 1), BOX_NTSC, want);

  await page.getByLabel('Frame cap').fill('4');
  const capped = expected(BOX_NTSC, 0, 4);
  expect(capped.frames).toEqual([0, 49, 99, 149]);
  checkSent(await askAboutRange(page, 2), BOX_NTSC, capped);
});

const mediaDir = join(import.meta.dirname, '..', '..', 'shared', 'media');
const mediaClips = existsSync(mediaDir) ? readdirSync(mediaDir).filter((f) => /\.(mp4|mov|webm|mkv)$/i.test(f)) : [];
const BLOCK = 16;

test.describe('shared media clips: the frames sent are ffmpeg\'s frames at the sample times', () => {
  test.skip(mediaClips.length === 0, 'no ../shared/media folder');
  for (const clip of mediaClips) {
    test(clip, async ({ page }) => {
      // Chromium's H.264 decoder stops at this stream's malformed IDR slices (see video-shared-media.spec.ts).
      test.skip(clip === 'opencv_box.mp4', 'Chromium does not decode this stream');
      const path = join(mediaDir, clip);
      await page.goto('/');
      await page.getByTestId('video-input').setInputFiles(path);
      await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0', { timeout: 20_000 });
      await installCapturingBackend(page, { block: BLOCK });
      await page.getByTestId('filmstrip').focus();
      await page.keyboard.press('Home');
      await page.keyboard.press('[');
      await page.keyboard.press('End');
      await page.keyboard.press(']');
      const sent = await askAboutRange(page, 1);
      expect(sent.length).toBeGreaterThan(1);

      // ffmpeg's frame presented at each sent time (the range starts at 0), and its neighbours.
      const times = ffmpegFrameTimes(path);
      const presented = sent.map((f) => times.findLastIndex((t) => t <= f.timestamp + 1e-6));
      const wanted = new Set(presented.flatMap((i) => [i - 1, i, i + 1]).filter((i) => i >= 0 && i < times.length));
      const grids = await ffmpegLumaGrids(path, sent[0].width, sent[0].height, BLOCK, wanted);
      expect(grids.size).toBe(wanted.size);
      const grid = (j: number) => grids.get(j)!;
      let checked = 0;
      sent.forEach((f, k) => {
        const i = presented[k];
        const same = gridDistance(f.grid, grid(i));
        for (const j of [i - 1, i + 1].filter((j) => grids.has(j))) {
          const apart = gridDistance(grid(i), grid(j)); // how different ffmpeg's frames i and j are
          const other = gridDistance(f.grid, grid(j));
          // Where frames i and j differ by more than three times the sent frame's distance to the nearer
          // of them (decoders differ slightly), the sent frame is frame i, and j is clearly further away.
          if (apart <= 3 * Math.min(same, other)) continue;
          checked++;
          const where = `${clip} at ${f.timestamp.toFixed(3)} s: sent vs ffmpeg frame ${i} ${same.toFixed(4)}, vs frame ${j} ${other.toFixed(4)} (frames ${i} and ${j} differ by ${apart.toFixed(4)})`;
          expect(other, where).toBeGreaterThan(2 * same);
        }
      });
      // On average each sample time has a neighbour that tells it apart.
      expect(checked).toBeGreaterThanOrEqual(sent.length);
    });
  }
});
