// The grounding experience on a generated clip, with a backend that replays recorded answers (the
// subject here is the UI: overlay pixels, playback, swimlanes, results list, history, exports).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { CSV_COLUMNS } from '../src/molmo2/export/csv.ts';
import { importResultJson } from '../src/molmo2/export/result.ts';
import { familyColor, trackStyle } from '../src/overlay/overlay-model.ts';
import { CLIP, h264Clip, testsrc720pClip } from './fixtures/clips.ts';
import { expectMarker, expectNoMarker, hex, installBackend, near, overlayPixel, saved, shownFrame } from './fixtures/grounding-page.ts';

// The white box's centre in frame f is (10 f + 10, 120) in the 320×240 clip. The range 0.5–2.9 s is
// sampled as a clip at 0, 0.5, …, 2.0, 2.4 s → frames 5, 10, 15, 20, 25, 29. Object 1 follows the box;
// object 2 sits at (50, 40) and is missing at clip time 0.5 (a gap).
const SAMPLED_FRAMES = [5, 10, 15, 20, 25, 29];
const CLIP_TIMES = ['0.0', '0.5', '1.0', '1.5', '2.0', '2.4'];
const norm = (px: number, size: number) => String(Math.round((px * 1000) / size)).padStart(3, '0');
const boxX = (f: number) => 10 * f + CLIP.boxW / 2;
const boxY = CLIP.boxY + CLIP.boxH / 2;
const TRACK_ANSWER =
  '<tracks coords="' +
  SAMPLED_FRAMES.map((f, k) => `${CLIP_TIMES[k]} 1 ${norm(boxX(f), CLIP.width)} ${norm(boxY, CLIP.height)}${k === 0 || k === 2 ? ` 2 ${norm(50, CLIP.width)} ${norm(40, CLIP.height)}` : ''}`).join(';') +
  '">box</tracks>';
const COUNT_ANSWER = 'Counting the <points coords="1 1 500 500">boxes</points> shows a total of 1.';

const COLOR_1 = hex(trackStyle(1).color);
const COLOR_2 = hex(trackStyle(2).color);
// Track 1 of the first run while a second run is drawn too (each run then takes a colour family).
const TRACK_IN_PAIR = hex(familyColor(0, 1));

async function gotoFrame(page: Page, f: number) {
  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('Home');
  for (let i = 0; i < f; i++) await page.keyboard.press('ArrowRight');
  await shownFrame(page, f);
}

async function selectRange(page: Page) {
  await gotoFrame(page, 5);
  await page.keyboard.press('[');
  await page.keyboard.press('End');
  await page.keyboard.press(']');
  await expect(page.getByTestId('selection')).toContainText('6 sampled frames');
}

async function askTrack(page: Page) {
  const box = page.getByTestId('ask-box');
  await box.getByRole('button', { name: 'Track' }).click();
  // The preset selects its object word, so typing replaces it.
  await expect(box.getByLabel('Question')).toBeFocused();
  await page.keyboard.type('box');
  await expect(box.getByLabel('Question')).toHaveValue('Track the box.');
  await expect(box.getByTestId('ask-sends')).toContainText('6 frames as video');
  await box.getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
}

test('a range question draws its tracks on the right frames, through playback, with swimlanes and a results list', async ({ page }) => {
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await shownFrame(page, 0);
  await installBackend(page, [TRACK_ANSWER]);
  await selectRange(page);
  await askTrack(page);

  // What was sent: six frames with clip timestamps from the range start.
  const asked = await page.evaluate(() => (window as unknown as { scripted: { asked: unknown[] } }).scripted.asked);
  expect(asked).toEqual([{ question: 'Track the box.', visual: 'video', frames: 6, timestamps: [0, 0.5, 1, 1.5, 2, 2.4] }]);
  await expect(page.getByTestId('announcement')).toContainText('Answered: 8 points');

  // Exact positions on sampled frames; held in between; a gap is not drawn.
  await gotoFrame(page, 5);
  await expectMarker(page, boxX(5), boxY, COLOR_1);
  await expectMarker(page, 50, 40, COLOR_2);
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await shownFrame(page, 7);
  await expectMarker(page, boxX(5), boxY, COLOR_1);
  await expectNoMarker(page, boxX(7), boxY);
  await gotoFrame(page, 10);
  await expectMarker(page, boxX(10), boxY, COLOR_1);
  await expectNoMarker(page, 50, 40);
  await gotoFrame(page, 4);
  await expectNoMarker(page, boxX(5), boxY); // before the range
  await expectNoMarker(page, 50, 40);

  // Playback: the same colour (and so the same id) wherever the player stops.
  await gotoFrame(page, 5);
  await page.keyboard.press('Space');
  await expect.poll(async () => Number(await page.getByTestId('frame-canvas').getAttribute('data-shown-frame'))).toBeGreaterThanOrEqual(22);
  await page.keyboard.press('Space');
  const stopped = Number(await page.getByTestId('frame-canvas').getAttribute('data-shown-frame'));
  const held = [...SAMPLED_FRAMES].reverse().find((f) => f <= stopped)!;
  await expectMarker(page, boxX(held), boxY, COLOR_1);

  // Swimlanes: one lane per track, a marker per model point; a marker seeks to its frame.
  await expect(page.getByTestId('swimlane')).toHaveCount(2);
  await expect(page.getByTestId('swimlane').nth(0).getByTestId('lane-marker')).toHaveCount(6);
  await expect(page.getByTestId('swimlane').nth(1).getByTestId('lane-marker')).toHaveCount(2);
  await page.getByTestId('swimlane').nth(0).locator('[data-frame="20"]').click();
  await shownFrame(page, 20);
  await expect(page.getByTestId('position')).toContainText('frame 21 / 30');
  await expectMarker(page, boxX(20), boxY, COLOR_1);

  // The results list mirrors the overlay.
  const tracks = page.getByTestId('track');
  await expect(tracks).toHaveCount(2);
  await expect(tracks.nth(0)).toContainText('#1 box · 6 points');
  await expect(tracks.nth(0).getByTestId('track-here')).toHaveText(` · here (${boxX(20)}, ${boxY})`);
  await expect(tracks.nth(1).getByTestId('track-here')).toHaveText(' · not on this frame');
  await tracks.nth(1).getByRole('button').click();
  await shownFrame(page, 5); // selecting a track goes to its first point
  await expect(tracks.nth(1).getByRole('listitem')).toHaveCount(2);
  await tracks.nth(1).getByRole('button', { name: /frame 16/ }).click();
  await shownFrame(page, 15);
  await expectMarker(page, 50, 40, COLOR_2);

  // Clicking a marker on the canvas selects its track.
  await page.locator('.overlay canvas').last().click({ position: { x: boxX(15), y: boxY } });
  await expect(tracks.nth(0).getByRole('button').first()).toHaveAttribute('aria-pressed', 'true');
});

test('every export downloads and validates; the history survives a reload; an imported JSON restores the overlay', async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await shownFrame(page, 0);
  await installBackend(page, [TRACK_ANSWER, COUNT_ANSWER]);
  await selectRange(page);
  await askTrack(page);
  // One export bar, for the selected run (the newest).
  const bar = page.getByTestId('export-bar');
  await expect(bar).toContainText('Export “Track the box.”');

  const exportAs = async (label: string) => {
    await bar.getByLabel('Export format').selectOption({ label });
    const [download] = await Promise.all([page.waitForEvent('download'), bar.getByRole('button', { name: 'Export' }).click()]);
    await expect(bar.getByRole('status')).toHaveText(`Saved ${download.suggestedFilename()}`);
    return saved(download);
  };

  const jsonPath = await exportAs('JSON (lossless)');
  const json = importResultJson(readFileSync(jsonPath, 'utf8'));
  expect(json.ok).toBe(true);
  if (!json.ok) return;
  expect(json.result.query).toMatchObject({ text: 'Track the box.', task: 'track', mode: 'video', clipStartS: 0.5 });
  expect(json.result.video).toMatchObject({ width: 320, height: 240, decodedFrameCount: 30, sampledFrames: SAMPLED_FRAMES });
  expect(json.result.rawText).toBe(TRACK_ANSWER);
  expect(json.result.status).toBe('complete');
  expect(json.result.points).toHaveLength(8);
  const p20 = json.result.points.find((p) => p.trackId === 1 && p.frame === 20)!;
  expect(Math.abs(p20.xPx - boxX(20))).toBeLessThan(1);
  expect(p20.timeS).toBeCloseTo(2.0, 6);
  // A point of a clip says so, and keeps the clip time the model wrote (video time 2.0 = clip 1.5).
  expect(json.result.points.every((p) => p.kind === 'video')).toBe(true);
  expect(p20).toMatchObject({ kind: 'video', clipTimeS: 1.5 });

  const csv = readFileSync(await exportAs('CSV'), 'utf8').trim().split(/\r?\n/);
  expect(csv[0]).toBe(CSV_COLUMNS.join(','));
  expect(csv).toHaveLength(9);

  const cvat = readFileSync(await exportAs('CVAT video 1.1 XML'), 'utf8');
  const structure = await page.evaluate((xml) => {
    const doc = new DOMParser().parseFromString(xml, 'application/xml');
    if (doc.querySelector('parsererror')) return null;
    const tracks = [...doc.querySelectorAll('annotations > track')];
    return {
      version: doc.querySelector('annotations > version')?.textContent,
      tracks: tracks.map((t) => ({
        id: t.getAttribute('id'),
        points: [...t.querySelectorAll('points')].map((p) => [p.getAttribute('frame'), p.getAttribute('outside'), p.getAttribute('keyframe')].join(':')),
      })),
    };
  }, cvat);
  expect(structure?.version).toBe('1.1');
  expect(structure?.tracks).toHaveLength(2);
  // Object 2 is seen at frame 5, missing at 10 (outside), seen at 15.
  expect(structure!.tracks[1].points.filter((p) => p.startsWith('5:') || p.startsWith('10:') || p.startsWith('15:'))).toEqual(['5:0:1', '10:1:1', '15:0:1']);

  const coco = JSON.parse(readFileSync(await exportAs('COCO keypoints'), 'utf8'));
  expect(coco.annotations).toHaveLength(8);
  expect(coco.tracks).toHaveLength(2);
  expect(coco.categories[0].keypoints).toHaveLength(1);
  expect(coco.images.length).toBeGreaterThanOrEqual(6);
  for (const a of coco.annotations) expect(a).toMatchObject({ track_id: expect.any(Number), keypoints: expect.any(Array), image_id: expect.any(Number) });

  const mot = readFileSync(await exportAs('MOT (lossy: points as small boxes)'), 'utf8').trim().split('\n');
  expect(mot).toHaveLength(8);
  for (const line of mot) expect(line.split(',')).toHaveLength(10);

  // Annotated video: the range's 25 frames, with the marker burned in where the overlay draws it.
  const [videoDownload] = await Promise.all([page.waitForEvent('download', { timeout: 180_000 }), bar.getByRole('button', { name: 'Annotated video' }).click()]);
  const videoPath = await saved(videoDownload);
  const ffprobe = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames,width,height', '-of', 'json', videoPath], { encoding: 'utf8' });
  expect(JSON.parse(ffprobe).streams[0]).toMatchObject({ nb_read_frames: '25', width: 320, height: 240 });
  // Output frame 15 is video frame 20.
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', videoPath, '-vf', 'select=eq(n\\,15)', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 24 });
  const px = (x: number, y: number) => [...raw.subarray((y * 320 + x) * 3, (y * 320 + x) * 3 + 3)];
  expect(near(px(boxX(20), boxY), COLOR_1, 40), `burned-in marker ${px(boxX(20), boxY)} ≈ ${COLOR_1}`).toBe(true);
  expect(near(px(boxX(20) + 60, boxY + 60), [0, 0, 0], 30)).toBe(true); // background away from markers

  // A second question, then compare the two side by side.
  await page.getByTestId('ask-box').getByRole('button', { name: 'Count' }).click();
  await expect(page.getByTestId('ask-box').getByLabel('Question')).toBeFocused();
  await page.keyboard.type('boxes');
  await page.getByTestId('ask-box').getByRole('button', { name: 'Ask' }).click();
  await expect(page.getByTestId('run')).toHaveCount(2);
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  await expect(page.getByTestId('run').first().getByTestId('run-count')).toHaveText('1');
  await page.getByTestId('run').first().getByLabel('compare').check();
  await expect(page.getByTestId('compare-run')).toHaveCount(2);
  // The clicked run (the count) is run A, on the left; run B defaults to the run before it.
  await expect(page.getByTestId('compare-count').first()).toContainText('stated count 1');
  await expect(page.getByTestId('compare-count').nth(1)).toContainText('2 object(s), 8 point(s)');
  // Comparing draws both runs; closing puts back what was drawn before (e2e/compare.spec.ts).
  await page.getByTestId('compare').getByRole('button', { name: 'Close' }).click();

  // Only the newest run is drawn: the count hid the track. Shown again, it is drawn beside the count,
  // in the first run's colour family; hidden, it is gone.
  await gotoFrame(page, 20);
  await expectNoMarker(page, boxX(20), boxY);
  await page.getByLabel('Show “Track the box.” on the video').check();
  await expectMarker(page, boxX(20), boxY, TRACK_IN_PAIR);
  await page.getByLabel('Show “Track the box.” on the video').uncheck();
  await expectNoMarker(page, boxX(20), boxY);
  await page.getByLabel('Show “Track the box.” on the video').check();

  // The history is kept per file: a reload brings both runs back, shown as they were.
  await page.reload();
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await expect(page.getByTestId('run')).toHaveCount(2);
  await gotoFrame(page, 20);
  await expectMarker(page, boxX(20), boxY, TRACK_IN_PAIR);

  // Delete both, then import the exported JSON: the overlay comes back.
  for (const q of ['How many boxes are there?', 'Track the box.']) await page.getByRole('button', { name: `Delete “${q}”` }).click();
  await expect(page.getByTestId('run')).toHaveCount(0);
  await expectNoMarker(page, boxX(20), boxY);
  await page.getByTestId('import-input').setInputFiles(jsonPath);
  await expect(page.getByTestId('run')).toHaveCount(1);
  await expectMarker(page, boxX(20), boxY, COLOR_1);
  await expect(page.getByTestId('swimlane')).toHaveCount(2);

  // A file that is not a result is refused with a message and changes nothing.
  const bad = join(mkdtempSync(join(tmpdir(), 'molmo2-bad-')), 'bad.json');
  writeFileSync(bad, JSON.stringify({ format: 'something-else' }));
  await page.getByTestId('import-input').setInputFiles(bad);
  await expect(page.getByTestId('results-panel').getByRole('alert')).toContainText('not a result file');
  await expect(page.getByTestId('run')).toHaveCount(1);
});

test('Esc stops a streaming answer; points parsed so far stay, and the model text is shown as text', async ({ page }) => {
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await shownFrame(page, 0);
  const long = `<points coords="1 1 500 500">a <b>bold</b> <img src=x onerror="window.injected=1"></points>${' and more'.repeat(200)}`;
  await installBackend(page, [long], 30);
  const box = page.getByTestId('ask-box');
  await box.getByLabel('Question').fill('Point to the box.');
  await box.getByLabel('Question').press('Enter');
  await expect(box).toHaveAttribute('data-status', 'running');
  await expect(box.getByTestId('answer')).toContainText('and more');
  await page.keyboard.press('Escape');
  await expect(box).toHaveAttribute('data-status', 'cancelled');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'cancelled');
  await expectMarker(page, 160, 120, COLOR_1);
  expect(await page.evaluate(() => (window as unknown as { injected?: number }).injected)).toBeUndefined();
  await expect(box.getByTestId('answer')).toContainText('<img src=x');
  // The stats panel shows the last question's figures.
  await page.getByRole('button', { name: 'Statistics' }).click();
  await expect(page.getByTestId('stats-panel').locator('[data-stat=decode]')).toContainText(/\d+ tokens · 10\.00 tok\/s/);
  await expect(page.getByTestId('stats-panel').locator('[data-stat=model]')).toContainText('Scripted answers · q4');
  await expect(page.getByTestId('stats-panel').locator('[data-stat="decoder placement"]')).toHaveText('1 node on the CPU (Range), the rest on the GPU');
});

test('Esc while the frames are still being decoded: the question never reaches the model, and the box shows the new question at once', async ({ page }) => {
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await shownFrame(page, 0);
  await installBackend(page, [COUNT_ANSWER], 10);
  await selectRange(page);
  const box = page.getByTestId('ask-box');
  await box.getByLabel('Question').fill('How many boxes?');
  await box.getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  await expect(box.getByTestId('answer')).toContainText('a total of 1');

  // Hold the decode worker's thread for a few seconds, so that the next question's frames are late.
  const decodeWorker = page.workers().find((w) => w.url().includes('decode'));
  expect(decodeWorker).toBeDefined();
  await decodeWorker!.evaluate(() => {
    setTimeout(() => {
      const until = Date.now() + 4000;
      while (Date.now() < until);
    }, 0);
  });
  await box.getByLabel('Question').fill('How many boxes now?');
  await box.getByLabel('Question').press('Enter');
  // At once: running, the previous answer gone, a second Enter ignored.
  await expect(box).toHaveAttribute('data-status', 'running');
  await expect(box.getByTestId('answer')).toBeEmpty();
  await expect(box).toContainText('Preparing the frames');
  await box.getByLabel('Question').press('Enter');
  await page.keyboard.press('Escape');
  await expect(box).toHaveAttribute('data-status', 'cancelled');
  await expect(page.getByTestId('run')).toHaveCount(2);
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'cancelled');
  const asked = () => page.evaluate(() => (window as unknown as { scripted: { asked: { question: string }[] } }).scripted.asked.map((a) => a.question));
  // Once the frames arrive nothing is sent; the next question is asked as usual.
  await page.waitForTimeout(4500);
  expect(await asked()).toEqual(['How many boxes?']);
  await box.getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  expect(await asked()).toEqual(['How many boxes?', 'How many boxes now?']);
  await expect(page.getByTestId('run')).toHaveCount(3);
});

test('a question over the loaded model\'s limits is refused before anything is decoded or sent, with the numbers', async ({ page }) => {
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await shownFrame(page, 0);
  await installBackend(page, [TRACK_ANSWER], 10, 400);
  await selectRange(page);
  const box = page.getByTestId('ask-box');
  await box.getByLabel('Question').fill('Track the box.');
  await expect(box.getByTestId('ask-sends')).toContainText('of at most 400 prompt tokens');
  await expect(box.getByTestId('ask-refused')).toContainText(/needs about \d+ prompt tokens for 6 frames.*Use at most [1-4] frames/);
  await expect(box.getByRole('button', { name: 'Ask' })).toBeDisabled();
  await box.getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run')).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { scripted: { asked: unknown[] } }).scripted.asked)).toEqual([]);
  // A lower frame cap, as suggested, fits.
  await page.getByLabel('Frame cap').fill('2');
  await expect(box.getByTestId('ask-sends')).toContainText('2 frames as video');
  await expect(box.getByTestId('ask-refused')).toHaveCount(0);
  // The panel says the question sends fewer frames than Molmo2 would sample from the range, and why.
  await expect(box.getByTestId('ask-frames-note')).toHaveText('2 of the 6 frames Molmo2 would sample: the frame cap is 2; this GPU holds 64 frames in one question (a 4096-token context).');
  await box.getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  expect(await page.evaluate(() => (window as unknown as { scripted: { asked: { frames: number }[] } }).scripted.asked.map((a) => a.frames))).toEqual([2]);
});

test('the limits hold on the selected-frames and re-run paths too', async ({ page }) => {
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await shownFrame(page, 0);
  await installBackend(page, [TRACK_ANSWER], 10, 400);
  const box = page.getByTestId('ask-box');
  await box.getByLabel('Question').fill('Point to the box.');
  // Two frames as images (each a multi-crop image block) are over a 400-token prompt.
  const strip = page.getByTestId('filmstrip');
  const size = (await strip.boundingBox())!;
  await strip.click({ position: { x: size.width * 0.2, y: 20 } });
  await strip.click({ position: { x: size.width * 0.6, y: 20 }, modifiers: ['Shift'] });
  await expect(box.getByTestId('ask-sends')).toContainText('2 frames as images');
  await expect(box.getByTestId('ask-refused')).toContainText(/needs about \d+ prompt tokens for 2 image\(s\).*Use fewer or smaller images/);
  await expect(box.getByRole('button', { name: 'Ask' })).toBeDisabled();

  // A two-frame range fits and is asked; with a model that allows less, its re-run is refused before anything is sent.
  await selectRange(page);
  await page.getByLabel('Frame cap').fill('2');
  await box.getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  await installBackend(page, [TRACK_ANSWER], 10, 120);
  await page.getByTestId('run').first().getByRole('button', { name: 'Re-run' }).click();
  await expect(box.getByTestId('ask-error')).toContainText(/needs about \d+ prompt tokens for 2 frames/);
  await expect(page.getByTestId('run')).toHaveCount(1);
  expect(await page.evaluate(() => (window as unknown as { scripted: { asked: unknown[] } }).scripted.asked)).toEqual([]);
});

test('stopping an annotated-video export leaves the run and the other exports working', async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(testsrc720pClip());
  await shownFrame(page, 0);
  await installBackend(page, ['<points coords="1 1 500 500">centre</points>']);
  await page.getByTestId('ask-box').getByLabel('Question').fill('Point to the centre.');
  await page.getByTestId('ask-box').getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  const bar = page.getByTestId('export-bar');
  await bar.getByRole('button', { name: 'Annotated video' }).click();
  await expect(bar.getByLabel('Annotated video progress')).toBeVisible();
  await bar.getByRole('button', { name: 'Stop' }).click();
  await expect(bar.getByRole('alert')).toHaveText('Video export stopped.');
  await expect(bar.getByRole('button', { name: 'Annotated video' })).toBeEnabled();
  const [download] = await Promise.all([page.waitForEvent('download'), bar.getByRole('button', { name: 'Export' }).click()]);
  expect(importResultJson(readFileSync(await saved(download), 'utf8')).ok).toBe(true);
});
