import { expect, test, type Page } from '@playwright/test';
import { CLIP, corruptClip, emptyClip, h264Clip, vp9Clip } from './fixtures/clips.ts';
import { boxLeft } from './fixtures/frame-pixels.ts';
import { sampleTimes } from '../src/molmo2/video.ts';

async function open(page: Page, path: string) {
  await page.getByTestId('video-input').setInputFiles(path);
}

async function shownFrame(page: Page, index: number) {
  await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', String(index));
}

for (const [name, clip, codec] of [
  ['MP4/H.264', h264Clip, 'AVC'],
  ['WebM/VP9', vp9Clip, 'VP9'],
] as const) {
  test(`${name}: metadata, filmstrip and frame-exact stepping`, async ({ page }) => {
    await page.goto('/');
    await open(page, clip());
    const info = page.getByTestId('video-info');
    await expect(info).toContainText(codec);
    await expect(info).toContainText(`${CLIP.width}×${CLIP.height}`);
    await expect(info).toContainText(`${CLIP.frames} frames`);
    await expect(info).toContainText('10.00 fps');
    await shownFrame(page, 0);
    expect(await boxLeft(page)).toBe(0);
    await expect(page.getByTestId('filmstrip').locator('img')).toHaveCount(16);

    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
    await shownFrame(page, 5);
    await expect(page.getByTestId('position')).toHaveText('frame 6 / 30 · 00:00.500');
    expect(Math.abs((await boxLeft(page)) - 5 * CLIP.step)).toBeLessThanOrEqual(1);

    await page.keyboard.press('Shift+ArrowRight');
    await shownFrame(page, 15);
    expect(Math.abs((await boxLeft(page)) - 15 * CLIP.step)).toBeLessThanOrEqual(1);
    await page.keyboard.press('End');
    await shownFrame(page, 29);
    await page.keyboard.press(',');
    await shownFrame(page, 28);
    expect(Math.abs((await boxLeft(page)) - 28 * CLIP.step)).toBeLessThanOrEqual(1);
  });
}

test('range selection with [ and ] marks the frames Molmo2 samples', async ({ page }) => {
  await page.goto('/');
  await open(page, h264Clip());
  await shownFrame(page, 0);
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('[');
  await page.keyboard.press('End');
  await page.keyboard.press(']');
  const start = 0.1;
  const end = (CLIP.frames - 1) / CLIP.fps;
  const expected = sampleTimes(end - start, { maxFrames: 64 }).map((t) => (start + t).toFixed(3));
  const marks = page.getByTestId('sample-mark');
  await expect(marks).toHaveCount(expected.length);
  expect(await marks.evaluateAll((els) => els.map((e) => e.getAttribute('data-time')))).toEqual(expected);
  await expect(page.getByTestId('selection')).toContainText(`${expected.length} sampled frames`);

  // A lower frame cap switches to uniform spacing.
  await page.getByLabel('Frame cap').fill('4');
  await expect(marks).toHaveCount(4);
});

test('shift-click on the filmstrip selects several frames', async ({ page }) => {
  await page.goto('/');
  await open(page, h264Clip());
  await shownFrame(page, 0);
  const strip = page.getByTestId('filmstrip');
  const box = (await strip.boundingBox())!;
  await strip.click({ position: { x: box.width * 0.52, y: 20 } });
  await strip.click({ position: { x: box.width * 0.82, y: 20 }, modifiers: ['Shift'] });
  await expect(page.getByTestId('selection')).toContainText('2 frames selected');
});

test('a corrupt or empty file shows its error, keeps the loaded video, and the next good file loads', async ({ page }) => {
  await page.goto('/');
  await open(page, h264Clip());
  await expect(page.getByTestId('video-info')).toContainText('box_h264.mp4');
  await open(page, corruptClip());
  await expect(page.getByTestId('video-error')).toContainText('corrupt.mp4');
  await expect(page.getByTestId('video-info')).toContainText('box_h264.mp4');
  await open(page, emptyClip());
  await expect(page.getByTestId('video-error')).toContainText('empty');
  await open(page, vp9Clip());
  await expect(page.getByTestId('video-info')).toContainText('box_vp9.webm');
  await expect(page.getByTestId('video-error')).toHaveCount(0);
  await shownFrame(page, 0);
});

test('shortcuts do not fire while typing', async ({ page }) => {
  await page.goto('/');
  await open(page, h264Clip());
  await shownFrame(page, 0);
  await page.getByLabel('Frame cap').focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('.');
  await expect(page.getByTestId('position')).toContainText('frame 1 / 30');
});
