// Bad and unusual videos (e2e/fixtures/bad-clips.ts), each opened through the UI after a good clip:
// either a clear message that names the file and says what is wrong — and the good clip, its frame and
// its results stay — or the file opens and is handled correctly (checked against ffmpeg / known times).
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { formatTime } from '../src/molmo2/video.ts';
import {
  audioOnlyClip,
  faststartClip,
  HUGE_FREE_BYTES,
  hugeFileClip,
  hugeResolutionClip,
  LONG,
  longClip,
  MARKER,
  MARKER_8K,
  mp4NamedWebm,
  OVERSIZE,
  oversizeClip,
  rotatedClip,
  truncatedClip,
  truncatedNoIndexClip,
  truncatedWebmClip,
  truncatedWebmSingleClusterClip,
  VFR_TIMES,
  vfrClip,
  webmNamedMp4,
  zeroedHeaderClip,
  zeroFramesClip,
} from './fixtures/bad-clips.ts';
import { CLIP, h264Clip } from './fixtures/clips.ts';
import { boxLeft } from './fixtures/frame-pixels.ts';
import { framesDecoded } from './fixtures/decode-count.ts';

const open = (page: Page, path: string) => page.getByTestId('video-input').setInputFiles(path);

async function shownFrame(page: Page, index: number) {
  await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', String(index));
}

/** Grey level of one pixel of the shown frame. */
async function pixel(page: Page, x: number, y: number): Promise<number> {
  return page.getByTestId('frame-canvas').evaluate((c: HTMLCanvasElement, [x, y]) => c.getContext('2d')!.getImageData(x, y, 1, 1).data[0], [x, y]);
}

/** Opens the good H.264 clip and asks one question (recorded answer), so there is a result to keep. */
async function openGoodClipWithRun(page: Page) {
  await page.goto('/');
  await open(page, h264Clip());
  await shownFrame(page, 0);
  await page.evaluate(async () => {
    const client = (await import(String('/src/ui/model/inference-client.ts'))) as typeof import('../src/ui/model/inference-client.ts');
    const { scriptedBackend } = (await import(String('/e2e/fixtures/scripted-backend.ts'))) as typeof import('./fixtures/scripted-backend.ts');
    client.setInferenceBackend(scriptedBackend({ answers: ['Counting the <points coords="1 1 500 500">boxes</points> shows a total of 1.'], delayMs: 1 }));
    const { useModelStore } = (await import(String('/src/state/model-store.ts'))) as typeof import('../src/state/model-store.ts');
    await useModelStore.getState().load({ kind: 'url', url: '/scripted/' }, 'Scripted answers');
  });
  const ask = page.getByTestId('ask-box');
  await ask.getByRole('button', { name: 'Count' }).click();
  await page.keyboard.type('boxes');
  await ask.getByRole('button', { name: 'Ask' }).click();
  await expect(page.getByTestId('run')).toHaveCount(1);
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
}

/** The good clip is still open: info line, frame 0 on the canvas with its box at x = 0, its run. */
async function expectGoodClipKept(page: Page) {
  await expect(page.getByTestId('video-info')).toContainText(`box_h264.mp4 · AVC · 320×240 · 10.00 fps · 00:03.000 · ${CLIP.frames} frames`);
  await shownFrame(page, 0);
  expect(await boxLeft(page)).toBe(0);
  await expect(page.getByTestId('run')).toHaveCount(1);
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
}

/** A failed open: the banner names the file and says what is wrong; the good clip stays. */
async function expectRefused(page: Page, path: string, what: RegExp) {
  await openGoodClipWithRun(page);
  await open(page, path);
  const banner = page.getByTestId('video-error');
  await expect(banner).toContainText(`“${basename(path)}”`);
  await expect(banner).toContainText(what);
  await expectGoodClipKept(page);
}

/** Opens the good clip, then `path`, which must replace it. */
async function openAfterGoodClip(page: Page, path: string) {
  await page.goto('/');
  await open(page, h264Clip());
  await shownFrame(page, 0);
  await open(page, path);
  await expect(page.getByTestId('video-info')).toContainText(basename(path));
  await expect(page.getByTestId('video-error')).toHaveCount(0);
}

test('truncated MP4 with its index first: opens with the frames that are in the file and says it is cut short', async ({ page }) => {
  const path = truncatedClip();
  // ffprobe on the complete file: the frames whose bytes lie before the cut.
  const { packets } = JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,pos,size', '-of', 'json', faststartClip()], { encoding: 'utf8' }),
  ) as { packets: { pts_time: string; pos: string; size: string }[] };
  const cut = statSync(path).size;
  const times = packets
    .filter((p) => Number(p.pos) + Number(p.size) <= cut)
    .map((p) => Number(p.pts_time))
    .sort((a, b) => a - b);
  expect(times.length).toBeGreaterThan(1);
  expect(times.length).toBeLessThan(CLIP.frames);

  await openGoodClipWithRun(page);
  await open(page, path);
  await expect(page.getByTestId('video-info')).toContainText(`truncated.mp4 · AVC · 320×240`);
  await expect(page.getByTestId('video-info')).toContainText(`${times.length} frames`);
  await expect(page.getByTestId('video-notice')).toHaveText(new RegExp(`^“truncated.mp4” is cut short: only ${times.length} of its ${CLIP.frames} frames are in the file`));
  // Every frame that is there shows its own picture (box at 10 px per frame of the original clip).
  await page.getByTestId('filmstrip').focus();
  for (let i = 0; i < times.length; i++) {
    if (i > 0) await page.keyboard.press('ArrowRight');
    await shownFrame(page, i);
    await expect(page.getByTestId('position')).toHaveText(`frame ${i + 1} / ${times.length} · ${formatTime(times[i])}`);
    expect(await boxLeft(page)).toBe(Math.round(times[i] * CLIP.fps) * CLIP.step);
  }
});

test('truncated MP4 without its index (moov written last): clear message, previous video kept', async ({ page }) => {
  await expectRefused(page, truncatedNoIndexClip(), /incomplete \(a download cut short\?\) or damaged/);
});

test('truncated WebM (clusters past the cut lost): opens with the frames that are there and says it is cut short', async ({ page }) => {
  await openGoodClipWithRun(page);
  await open(page, truncatedWebmClip());
  const info = page.getByTestId('video-info');
  await expect(info).toContainText('truncated-clusters.webm · VP9 · 320×240');
  const count = Number((await info.textContent())!.match(/(\d+) frames/)![1]);
  expect(count).toBeGreaterThan(1);
  expect(count).toBeLessThan(CLIP.frames);
  await expect(page.getByTestId('video-notice')).toHaveText(
    new RegExp(`^“truncated-clusters.webm” is cut short: its header says it lasts ${formatTime(CLIP.frames / CLIP.fps).replace('.', '\\.')}, but the frames in the file end at [0-9:.]+ \\(an interrupted download\\?\\)\\. Showing those ${count}\\.$`),
  );
  // Frame-exact over what is there: each frame's box sits where its own time puts it.
  await page.getByTestId('filmstrip').focus();
  for (let i = 0; i < count; i++) {
    if (i > 0) await page.keyboard.press('ArrowRight');
    await shownFrame(page, i);
    await expect(page.getByTestId('position')).toHaveText(`frame ${i + 1} / ${count} · ${formatTime(i / CLIP.fps)}`);
    expect(await boxLeft(page)).toBe(i * CLIP.step);
  }
});

test('truncated WebM inside its only cluster: says it is cut short before any whole frame, previous video kept', async ({ page }) => {
  await expectRefused(page, truncatedWebmSingleClusterClip(), /is cut short before its first complete frame: its header says it lasts 00:03\.000, but no frame is whole in the file/);
});

test('zeroed header: clear message, previous video kept', async ({ page }) => {
  await expectRefused(page, zeroedHeaderClip(), /not a video this app can read: its format was not recognised/);
});

test('wrong extension: a WebM named .mp4 opens (the container is sniffed)', async ({ page }) => {
  await openAfterGoodClip(page, webmNamedMp4());
  await expect(page.getByTestId('video-info')).toContainText(`VP9 · 320×240 · 10.00 fps · 00:03.000 · ${CLIP.frames} frames`);
  await shownFrame(page, 0);
  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('Shift+ArrowRight');
  await shownFrame(page, 10);
  expect(await boxLeft(page)).toBe(10 * CLIP.step);
});

test('wrong extension: an MP4 named .webm opens (the container is sniffed)', async ({ page }) => {
  await openAfterGoodClip(page, mp4NamedWebm());
  await expect(page.getByTestId('video-info')).toContainText(`AVC · 320×240 · 10.00 fps · 00:03.000 · ${CLIP.frames} frames`);
  await shownFrame(page, 0);
  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('Shift+ArrowRight');
  await shownFrame(page, 10);
  expect(await boxLeft(page)).toBe(10 * CLIP.step);
});

test('audio only: clear message, previous video kept', async ({ page }) => {
  await expectRefused(page, audioOnlyClip(), /has only audio, no video track/);
});

test('zero frames (a video track header, no samples): clear message, previous video kept', async ({ page }) => {
  await expectRefused(page, zeroFramesClip(), /has a video track but no frames/);
});

test('huge resolution (8K, 2 frames): decodes exactly, or a clear message; never a crash or a hang', async ({ page }) => {
  const { width, height, x, y, w, h } = MARKER_8K;
  await openGoodClipWithRun(page);
  await open(page, hugeResolutionClip());
  const opened = page.getByTestId('video-info').filter({ hasText: '8k.mp4' });
  await expect(opened.or(page.getByTestId('video-error'))).toBeVisible({ timeout: 60_000 });
  if (await page.getByTestId('video-error').isVisible()) {
    // What this browser's WebCodecs cannot do must be said, and the good clip kept.
    await expect(page.getByTestId('video-error')).toContainText(/“8k\.mp4”.*(cannot decode|larger than|could not be decoded)/);
    await expectGoodClipKept(page);
    return;
  }
  await expect(opened).toContainText(`${width}×${height}`);
  await expect(opened).toContainText('2 frames');
  for (const frame of [0, 1]) {
    if (frame) await page.keyboard.press('ArrowRight');
    await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', String(frame), { timeout: 60_000 });
    const left = x + 1000 * frame;
    expect(await page.getByTestId('frame-canvas').evaluate((c: HTMLCanvasElement) => [c.width, c.height])).toEqual([width, height]);
    expect(await pixel(page, left + w / 2, y + h / 2)).toBeGreaterThan(200);
    expect(await pixel(page, left + 4, y + 4)).toBeGreaterThan(200);
    expect(await pixel(page, left - 8, y + h / 2)).toBeLessThan(50);
    expect(await pixel(page, left + w + 8, y + h / 2)).toBeLessThan(50);
  }
});

test('over the size cap (9216×8192, 75 megapixels): refused with the size and the cap before decoding, previous video kept', async ({ page }) => {
  const { width, height } = OVERSIZE;
  await expectRefused(page, oversizeClip(), new RegExp(`is ${width}×${height}, larger than this app can decode \\(at most 67 megapixels`));
  // Refused from the header: the decode worker decoded the good clip's frames only, none of the big one.
  const before = await framesDecoded(page);
  await open(page, oversizeClip());
  await expect(page.getByTestId('video-error')).toContainText('oversize.mp4');
  expect(await framesDecoded(page)).toBe(before);
});

test('variable frame rate: frame count, per-frame timestamps, frame-exact stepping, "variable frame rate" in the info line', async ({ page }) => {
  await openAfterGoodClip(page, vfrClip());
  const info = page.getByTestId('video-info');
  await expect(info).toContainText(`${VFR_TIMES.length} frames`);
  await expect(info).toContainText('variable frame rate');
  await expect(info).not.toContainText('fps');
  await page.getByTestId('filmstrip').focus();
  for (let i = 0; i < VFR_TIMES.length; i++) {
    if (i > 0) await page.keyboard.press('ArrowRight');
    await shownFrame(page, i);
    await expect(page.getByTestId('position')).toHaveText(`frame ${i + 1} / ${VFR_TIMES.length} · ${formatTime(VFR_TIMES[i])}`);
    expect(await boxLeft(page)).toBe(i * CLIP.step);
  }
  // Backwards too, across the irregular gaps.
  await page.keyboard.press('Home');
  await shownFrame(page, 0);
  await page.keyboard.press('End');
  await shownFrame(page, VFR_TIMES.length - 1);
  await page.keyboard.press(',');
  await shownFrame(page, VFR_TIMES.length - 2);
  expect(await boxLeft(page)).toBe((VFR_TIMES.length - 2) * CLIP.step);
});

/** Bounding box of the bright pixels of a grey image. */
function brightBox(grey: ArrayLike<number>, width: number) {
  let [x0, y0, x1, y1] = [Infinity, Infinity, -1, -1];
  for (let i = 0; i < grey.length; i++) {
    if (grey[i] <= 128) continue;
    const [x, y] = [i % width, Math.floor(i / width)];
    [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  }
  return { x0, y0, x1, y1 };
}

for (const degrees of [90, 180, 270] as const) {
  test(`rotation metadata ${degrees}°: display size and the frame's pixels rotated as ffmpeg shows them`, async ({ page }) => {
    const path = rotatedClip(degrees);
    const [width, height] = degrees === 180 ? [MARKER.width, MARKER.height] : [MARKER.height, MARKER.width];
    // ffmpeg applies the display matrix when decoding: its first frame is the reference.
    const ref = execFileSync('ffmpeg', ['-v', 'error', '-i', path, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], { maxBuffer: 1 << 22 });
    expect(ref.length).toBe(width * height);
    const expected = brightBox(ref, width);
    // The reference is rotated: the marker is not where the coded frame has it.
    expect([expected.x1 - expected.x0 + 1, expected.y1 - expected.y0 + 1]).toEqual(degrees === 180 ? [MARKER.w, MARKER.h] : [MARKER.h, MARKER.w]);
    expect(expected.x0 === MARKER.x && expected.y0 === MARKER.y).toBe(false);

    await openAfterGoodClip(page, path);
    await expect(page.getByTestId('video-info')).toContainText(`${width}×${height} (rotated ${degrees}°)`);
    await shownFrame(page, 0);
    const shown = await page.getByTestId('frame-canvas').evaluate((c: HTMLCanvasElement) => {
      const rgba = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      return { width: c.width, height: c.height, grey: Array.from({ length: c.width * c.height }, (_, i) => rgba[4 * i]) };
    });
    expect([shown.width, shown.height]).toEqual([width, height]);
    const got = brightBox(shown.grey, shown.width);
    for (const k of ['x0', 'y0', 'x1', 'y1'] as const) expect(Math.abs(got[k] - expected[k]), `${k}: ${got[k]} vs ffmpeg ${expected[k]}`).toBeLessThanOrEqual(1);
  });
}

test('very long duration (3 h, 1080 frames): opens quickly without decoding everything, count and duration right', async ({ page }) => {
  const path = longClip();
  const frames = LONG.seconds * LONG.fps;
  await page.goto('/');
  await open(page, h264Clip());
  await shownFrame(page, 0);
  await expect(page.getByTestId('filmstrip').locator('img')).toHaveCount(16);
  const before = await framesDecoded(page);
  await open(page, path);
  await expect(page.getByTestId('video-info')).toContainText(`three-hours.mp4 · AVC · 64×48 · ${LONG.fps.toFixed(2)} fps · ${formatTime(LONG.seconds)} · ${frames} frames`);
  await shownFrame(page, 0);
  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('End');
  await shownFrame(page, frames - 1);
  await expect(page.getByTestId('position')).toHaveText(`frame ${frames} / ${frames} · ${formatTime((frames - 1) / LONG.fps)}`);
  await expect(page.getByTestId('filmstrip').locator('img')).toHaveCount(16);
  // Opening reads the index only; the first frame, 16 thumbnails and the last frame each decode at
  // most one group of pictures (a keyframe every LONG.gop frames): nowhere near all 1080 frames.
  const decoded = (await framesDecoded(page)) - before;
  expect(decoded).toBeGreaterThan(0);
  expect(decoded).toBeLessThanOrEqual((1 + 16 + 1) * LONG.gop);
});

test('a 2 GB+ file (2.5 GiB free box before the index) is streamed: opens, first frame and stepping right', async ({ page }) => {
  const path = hugeFileClip();
  expect(statSync(path).size).toBeGreaterThan(HUGE_FREE_BYTES);
  // Memory stays bounded because nothing reads the File whole: mediabunny's BlobSource reads slices
  // (box headers, the index, single samples) and the history fingerprint reads the first and last MiB.
  await openGoodClipWithRun(page);
  await open(page, path);
  await expect(page.getByTestId('video-info')).toContainText(`2.5GB.mp4 · AVC · 320×240 · 10.00 fps · 00:03.000 · ${CLIP.frames} frames`);
  await shownFrame(page, 0);
  expect(await boxLeft(page)).toBe(0);
  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('End');
  await shownFrame(page, CLIP.frames - 1);
  expect(await boxLeft(page)).toBe((CLIP.frames - 1) * CLIP.step);
  // A different file: the first video's results are not shown for it.
  await expect(page.getByTestId('run')).toHaveCount(0);
});
