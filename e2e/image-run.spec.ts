// A question about an image file takes the same path as one about a video frame: it becomes a run,
// drawn on the image, listed, kept in the file's history across a reload, and exported (JSON and the
// annotated image). The backend replays a recorded answer (the UI is the subject here).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { importResultJson } from '../src/molmo2/export/result.ts';
import { trackStyle } from '../src/overlay/overlay-model.ts';
import { expectMarker, hex, installBackend, near, saved, shownFrame } from './fixtures/grounding-page.ts';

// A 400×300 PNG, black with a white 40×80 box whose centre is (200, 140).
const IMAGE = { width: 400, height: 300, box: { x: 180, y: 100, w: 40, h: 80 } };
const BOX_CENTRE = { x: 200, y: 140 };
// Object 1 on the box, object 2 at (40, 30), on image 1.
const ANSWER = 'Counting the <points coords="1 1 500 467 2 100 100">boxes</points> shows a total of 2.';
const COLOR_1 = hex(trackStyle(1).color);
const COLOR_2 = hex(trackStyle(2).color);

function boxImage(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'molmo2-image-')), 'boxes.png');
  const { width, height, box } = IMAGE;
  execFileSync(process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg', [
    ...['-v', 'error', '-y', '-f', 'lavfi', '-i', `color=c=black:s=${width}x${height}`],
    ...['-vf', `drawbox=x=${box.x}:y=${box.y}:w=${box.w}:h=${box.h}:color=white:t=fill`, '-frames:v', '1', path],
  ]);
  return path;
}

async function openImage(page: Page, path: string) {
  await page.getByTestId('image-input').setInputFiles(path);
  await expect(page.getByTestId('video-info')).toContainText(/boxes\.png · PNG · \d+×\d+ · still image$/);
  await shownFrame(page, 0);
}

test('a question about an image file becomes a run: drawn, listed, kept after a reload, exported', async ({ page }) => {
  test.setTimeout(120_000);
  const image = boxImage();
  await page.goto('/');
  await openImage(page, image);
  await installBackend(page, [ANSWER]);

  const box = page.getByTestId('ask-box');
  await expect(box.getByTestId('ask-sends')).toContainText('frame 1');
  await box.getByLabel('Question').fill('How many boxes are there?');
  await box.getByLabel('Question').press('Enter');

  // The run is listed with its count, and the answer shows (read from the run).
  const run = page.getByTestId('run');
  await expect(run).toHaveCount(1);
  await expect(run).toHaveAttribute('data-status', 'done');
  await expect(run.getByTestId('run-count')).toHaveText('2');
  await expect(box.getByTestId('answer')).toHaveText(ANSWER);
  const sent = await page.evaluate(() => (window as unknown as { scripted: { asked: { visual: string; frames: number }[] } }).scripted.asked);
  expect(sent).toEqual([expect.objectContaining({ visual: 'images', frames: 1 })]);

  // Both points are drawn on the image.
  await expectMarker(page, BOX_CENTRE.x, BOX_CENTRE.y, COLOR_1);
  await expectMarker(page, 40, 30, COLOR_2);

  // JSON export: image points, keyed by the image index.
  const bar = page.getByTestId('export-bar');
  await bar.getByLabel('Export format').selectOption({ label: 'JSON (lossless)' });
  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), bar.getByRole('button', { name: 'Export' }).click()]);
  const json = importResultJson(readFileSync(await saved(jsonDownload), 'utf8'));
  expect(json.ok).toBe(true);
  if (!json.ok) return;
  expect(json.result).toMatchObject({ version: 4, status: 'complete', count: 2, query: { mode: 'images', text: 'How many boxes are there?' }, video: { name: 'boxes.png', width: 400, height: 300 } });
  expect(json.result.points).toHaveLength(2);
  expect(json.result.points[0]).toMatchObject({ kind: 'image', image: 1, trackId: 1, frame: 0, timeS: 0, label: 'boxes' });
  expect(json.result.points[0].xPx).toBeCloseTo(BOX_CENTRE.x, 6);
  expect(json.result.points[0].yPx).toBeCloseTo(140.1, 6);

  // The annotated copy is a PNG of the image with the markers burned in.
  const [imageDownload] = await Promise.all([page.waitForEvent('download'), bar.getByRole('button', { name: 'Annotated image' }).click()]);
  expect(imageDownload.suggestedFilename()).toMatch(/\.png$/);
  const raw = execFileSync(process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg', ['-v', 'error', '-i', await saved(imageDownload), '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 24 });
  expect(raw.length).toBe(IMAGE.width * IMAGE.height * 3);
  const px = (x: number, y: number) => [...raw.subarray((y * IMAGE.width + x) * 3, (y * IMAGE.width + x) * 3 + 3)];
  expect(near(px(BOX_CENTRE.x, BOX_CENTRE.y), COLOR_1, 40), `burned-in marker ${px(BOX_CENTRE.x, BOX_CENTRE.y)} ≈ ${COLOR_1}`).toBe(true);
  expect(near(px(300, 250), [0, 0, 0], 30)).toBe(true); // background away from the markers

  // The image's history: after a reload, opening the same file brings the run back, drawn again.
  await page.reload();
  await openImage(page, image);
  await expect(page.getByTestId('run')).toHaveCount(1);
  await expect(page.getByTestId('run')).toHaveAttribute('data-status', 'done');
  await expect(page.getByTestId('run').getByTestId('run-count')).toHaveText('2');
  await expectMarker(page, BOX_CENTRE.x, BOX_CENTRE.y, COLOR_1);
});
