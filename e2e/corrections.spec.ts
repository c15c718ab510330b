// Corrections by hand: in a run's "Edit points" mode a marker is dragged, one deleted and one added
// with the mouse and keys; undo/redo; the JSON export keeps the corrected points, the model's original
// and status 'edited'; the CSV uses the corrected points; the history (a reload) and a re-import of the
// exported file give the corrected run. The backend replays a recorded answer about frame 0 (320×240).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AxeResults } from 'axe-core';
import { expect, test, type Page } from '@playwright/test';
import { importResultJson } from '../src/molmo2/export/result.ts';
import { trackStyle } from '../src/overlay/overlay-model.ts';
import { CLIP, h264Clip } from './fixtures/clips.ts';
import { askInBox, expectMarker, expectNoMarker, hex, installBackend, openClip, saved, shownFrame } from './fixtures/grounding-page.ts';

// Object 1 at the centre (160, 120), object 2 at (80, 60).
const ANSWER = '<points coords="1 1 500 500 2 250 250">cups</points>';
const QUESTION = 'Point to the cups.';
const ONE = { x: 160, y: 120 };
const TWO = { x: 80, y: 60 };
const MOVED = { x: 240, y: 180 };
const ADDED = { x: 60, y: 200 };
const COLOR = (id: number) => hex(trackStyle(id).color);

// axe is injected by a script tag, which the page's Content-Security-Policy would refuse.
test.use({ bypassCSP: true });

/** WCAG A/AA violations axe finds on the page now (as accessibility.spec.ts checks the other states). */
async function axeViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<AxeResults> } }).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`);
  });
}

/** Where frame pixel (x, y) is on the page. */
async function onPage(page: Page, p: { x: number; y: number }) {
  const canvas = page.getByTestId('frame-canvas');
  const box = (await canvas.boundingBox())!;
  const width = await canvas.evaluate((c: HTMLCanvasElement) => c.width);
  const scale = box.width / width;
  return { x: box.x + p.x * scale, y: box.y + p.y * scale };
}

async function drag(page: Page, from: { x: number; y: number }, to: { x: number; y: number }) {
  const [a, b] = [await onPage(page, from), await onPage(page, to)];
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move(b.x, b.y, { steps: 8 });
  await page.mouse.up();
}

async function clickAt(page: Page, p: { x: number; y: number }) {
  const q = await onPage(page, p);
  await page.mouse.click(q.x, q.y);
}

async function exportAs(page: Page, label: string) {
  const bar = page.getByTestId('export-bar');
  await bar.getByLabel('Export format').selectOption({ label });
  const [download] = await Promise.all([page.waitForEvent('download'), bar.getByRole('button', { name: 'Export' }).click()]);
  return saved(download);
}

test('points are dragged, deleted and added by hand, undone and redone, exported as edited, kept across a reload and re-imported', async ({ page }) => {
  test.setTimeout(120_000);
  await openClip(page);
  await installBackend(page, [ANSWER]);
  await askInBox(page, QUESTION);
  const run = page.getByTestId('run').first();
  await expect(run).toHaveAttribute('data-status', 'done');
  await expectMarker(page, ONE.x, ONE.y, COLOR(1));
  await expectMarker(page, TWO.x, TWO.y, COLOR(2));

  // Outside edit mode a click on the video adds nothing, and a drag moves nothing.
  await clickAt(page, ADDED);
  await drag(page, ONE, MOVED);
  await expectNoMarker(page, ADDED.x, ADDED.y);
  await expectMarker(page, ONE.x, ONE.y, COLOR(1));
  await expect(run.getByTestId('run-edited')).toHaveCount(0);

  await page.getByRole('button', { name: `Edit points of “${QUESTION}”` }).click();
  const bar = page.getByTestId('edit-bar');
  await expect(bar).toBeVisible();

  // Drag object 1; the results list shows the corrected position.
  await drag(page, ONE, MOVED);
  await expectNoMarker(page, ONE.x, ONE.y);
  await expectMarker(page, MOVED.x, MOVED.y, COLOR(1));
  await expect(run.getByTestId('track').first().getByTestId('track-here')).toContainText('here (240, 180)');
  await expect(run.getByTestId('run-edited')).toHaveText('edited');

  // Select object 2's marker and delete it with the Delete key.
  await clickAt(page, TWO);
  await page.keyboard.press('Delete');
  await expectNoMarker(page, TWO.x, TWO.y);
  await expect(run.getByTestId('track')).toHaveCount(1);

  // A click on the video adds a point to a new object (#3 — ids of the model's points are not reused).
  await expect(bar.getByLabel('Object a click on the video adds a point to')).toHaveValue('new');
  await expect(bar.getByLabel('Object a click on the video adds a point to').locator('option:checked')).toHaveText('new object (#3)');
  await clickAt(page, ADDED);
  await expectMarker(page, ADDED.x, ADDED.y, COLOR(3));
  await expect(run.getByTestId('track')).toHaveCount(2);
  await expect(run.getByTestId('run-count')).toHaveText('2');

  // Undo twice (the add, then the delete), redo with both keys.
  await page.keyboard.press('Control+z');
  await expectNoMarker(page, ADDED.x, ADDED.y);
  await page.keyboard.press('Control+z');
  await expectMarker(page, TWO.x, TWO.y, COLOR(2));
  await expectMarker(page, MOVED.x, MOVED.y, COLOR(1));
  await page.keyboard.press('Control+Shift+z');
  await expectNoMarker(page, TWO.x, TWO.y);
  await page.keyboard.press('Control+y');
  await expectMarker(page, ADDED.x, ADDED.y, COLOR(3));
  await expect(bar.getByRole('button', { name: 'Redo' })).toBeDisabled();

  // Frame 2 was not sent to the model: a click there adds nothing and says why.
  await page.keyboard.press('ArrowRight');
  await shownFrame(page, 1);
  await clickAt(page, { x: 200, y: 40 });
  await expect(bar.getByRole('alert')).toContainText('Frame 2 was not sent to the model');
  // The edit bar, its message and the "edited" mark are readable.
  expect(await axeViolations(page)).toEqual([]);
  await page.getByRole('button', { name: 'Previous sampled frame' }).click();
  await shownFrame(page, 0);

  // The JSON file: corrected points, the model's original, status 'edited'.
  const jsonPath = await exportAs(page, 'JSON (lossless)');
  const text = readFileSync(jsonPath, 'utf8');
  expect(JSON.parse(text)).toMatchObject({ version: 4, status: 'edited' });
  const file = importResultJson(text);
  expect(file.ok).toBe(true);
  if (!file.ok) return;
  const xy = (points: { trackId: number; xPx: number; yPx: number }[]) => points.map((p) => [p.trackId, Math.round(p.xPx), Math.round(p.yPx)]);
  expect(xy(file.result.points)).toEqual([
    [1, MOVED.x, MOVED.y],
    [3, ADDED.x, ADDED.y],
  ]);
  expect(file.result.points[1]).toMatchObject({ kind: 'image', image: 1, frame: 0, label: 'cups' });
  expect(xy(file.result.original!.points)).toEqual([
    [1, ONE.x, ONE.y],
    [2, TWO.x, TWO.y],
  ]);
  expect(file.result.rawText).toBe(ANSWER);

  // The CSV holds the corrected points only.
  const csv = readFileSync(await exportAs(page, 'CSV'), 'utf8').trim().split('\r\n');
  expect(csv).toHaveLength(3);
  expect(csv[1]).toContain(`,1,cups,0,0,${MOVED.x},${MOVED.y},`);
  expect(csv[2]).toContain(`,3,cups,0,0,${ADDED.x},${ADDED.y},`);

  // The history keeps the corrected run across a reload.
  await page.reload();
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await shownFrame(page, 0);
  await expect(page.getByTestId('run')).toHaveCount(1);
  await expect(page.getByTestId('run').first().getByTestId('run-edited')).toHaveText('edited');
  await expectMarker(page, MOVED.x, MOVED.y, COLOR(1));
  await expectMarker(page, ADDED.x, ADDED.y, COLOR(3));
  await expectNoMarker(page, ONE.x, ONE.y);
  await expectNoMarker(page, TWO.x, TWO.y);

  // The exported file imported again gives the corrected run, still marked edited.
  await page.getByRole('button', { name: `Delete “${QUESTION}”` }).click();
  await expectNoMarker(page, MOVED.x, MOVED.y);
  await page.getByTestId('import-input').setInputFiles(jsonPath);
  await expect(page.getByTestId('run')).toHaveCount(1);
  await expect(page.getByTestId('run').first().getByTestId('run-edited')).toHaveText('edited');
  await expectMarker(page, MOVED.x, MOVED.y, COLOR(1));
  await expectMarker(page, ADDED.x, ADDED.y, COLOR(3));
  await expectNoMarker(page, TWO.x, TWO.y);
  // Back to the model's points: the import's original comes back.
  await page.getByRole('button', { name: `Edit points of “${QUESTION}”` }).click();
  await page.getByTestId('edit-bar').getByRole('button', { name: "Back to the model's points" }).click();
  await expectMarker(page, ONE.x, ONE.y, COLOR(1));
  await expectMarker(page, TWO.x, TWO.y, COLOR(2));
  await expect(page.getByTestId('run').first().getByTestId('run-edited')).toHaveCount(0);
  // Esc leaves Edit points.
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('edit-bar')).toHaveCount(0);
});

// A range question (0.5–2.9 s → sampled frames 5, 10, 15, 20, 25, 29, clip times from 0.5 s): object 1
// follows the box, centre (10 f + 10, 120); object 2 at (50, 40) is missed at frame 10.
const SAMPLED = [5, 10, 15, 20, 25, 29];
const norm = (px: number, size: number) => String(Math.round((px * 1000) / size)).padStart(3, '0');
const boxX = (f: number) => CLIP.step * f + CLIP.boxW / 2;
const boxY = CLIP.boxY + CLIP.boxH / 2;
const TRACK_ANSWER =
  '<tracks coords="' +
  SAMPLED.map((f, k) => `${((f - 5) / CLIP.fps).toFixed(1)} 1 ${norm(boxX(f), CLIP.width)} ${norm(boxY, CLIP.height)}${k === 1 ? '' : ` 2 ${norm(50, CLIP.width)} ${norm(40, CLIP.height)}`}`).join(';') +
  '">box</tracks>';

test('on a clip, a missed point is added on a sampled frame with its clip time, and a moved point is held until the next sample', async ({ page }) => {
  await openClip(page);
  await installBackend(page, [TRACK_ANSWER]);
  await page.getByTestId('filmstrip').focus();
  for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
  await page.keyboard.press('[');
  await page.keyboard.press('End');
  await page.keyboard.press(']');
  await expect(page.getByTestId('selection')).toContainText('6 sampled frames');
  const box = page.getByTestId('ask-box');
  await box.getByRole('button', { name: 'Track' }).click();
  await page.keyboard.type('box');
  await box.getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');

  await page.getByRole('button', { name: 'Edit points of “Track the box.”' }).click();
  const bar = page.getByTestId('edit-bar');
  // From the last frame back to sampled frame 10, where object 2 was missed.
  for (const f of [25, 20, 15, 10]) {
    await bar.getByRole('button', { name: 'Previous sampled frame' }).click();
    await shownFrame(page, f);
  }
  await expectNoMarker(page, 50, 40);
  await bar.getByLabel('Object a click on the video adds a point to').selectOption({ label: '#2 box' });
  await clickAt(page, { x: 50, y: 40 });
  await expectMarker(page, 50, 40, COLOR(2));
  await drag(page, { x: boxX(10), y: boxY }, { x: boxX(10), y: 200 });
  await expectMarker(page, boxX(10), 200, COLOR(1));
  // Frame 11 was not sampled: it shows the moved point, held from frame 10.
  await page.getByRole('button', { name: 'Next frame' }).click();
  await shownFrame(page, 11);
  await expectMarker(page, boxX(10), 200, COLOR(1));

  const file = importResultJson(readFileSync(await exportAs(page, 'JSON (lossless)'), 'utf8'));
  expect(file.ok).toBe(true);
  if (!file.ok) return;
  expect(file.result.status).toBe('edited');
  const at10 = file.result.points.filter((p) => p.frame === 10).map((p) => ({ ...p, xPx: Math.round(p.xPx), yPx: Math.round(p.yPx) }));
  expect(at10).toEqual([
    expect.objectContaining({ trackId: 1, kind: 'video', clipTimeS: 0.5, timeS: 1, xPx: boxX(10), yPx: 200 }),
    expect.objectContaining({ trackId: 2, kind: 'video', clipTimeS: 0.5, timeS: 1, xPx: 50, yPx: 40, tag: 'tracks', label: 'box' }),
  ]);
  expect(file.result.original!.points.filter((p) => p.frame === 10).map((p) => p.trackId)).toEqual([1]);

  // CVAT: object 2 is no longer outside at frame 10.
  const cvat = readFileSync(await exportAs(page, 'CVAT video 1.1 XML'), 'utf8');
  const two = await page.evaluate((xml) => {
    const doc = new DOMParser().parseFromString(xml, 'application/xml');
    const track = [...doc.querySelectorAll('annotations > track')][1];
    return [...track.querySelectorAll('points')].map((p) => `${p.getAttribute('frame')}:${p.getAttribute('outside')}`);
  }, cvat);
  expect(two.filter((p) => /^(5|10|15):/.test(p))).toEqual(['5:0', '10:0', '15:0']);
});
