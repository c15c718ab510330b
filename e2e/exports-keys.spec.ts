// Exports say what they hold (one export bar for the selected run; the run's status in its JSON file;
// no empty files; each save named) and the keys (Esc closes a sheet or panel before it stops a
// question; the sheet lists every key and gesture; '/' and 1–5; typing right after a preset click).
// The backend replays recorded answers: the UI is the subject here.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { CSV_COLUMNS } from '../src/molmo2/export/csv.ts';
import { importResultJson } from '../src/molmo2/export/result.ts';
import { askInBox, installBackend, openClip, saved, shownFrame } from './fixtures/grounding-page.ts';

const POINT_ANSWER = '<points coords="1 1 500 500">box</points>';
const NO_POINTS = 'There is no cat in this frame.';
const LONG_ANSWER = `<points coords="1 1 500 500">box</points>${' and more'.repeat(300)}`;

/** Counts the downloads the page starts. */
function countDownloads(page: Page) {
  const count = { n: 0 };
  page.on('download', () => count.n++);
  return count;
}

test('one export bar acts on the selected run, warns instead of writing an empty file, and names each file it saves', async ({ page }) => {
  await openClip(page);
  await installBackend(page, [POINT_ANSWER, NO_POINTS]);
  await askInBox(page, 'Point to the box.');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  await askInBox(page, 'Is there a cat?');
  await expect(page.getByTestId('run')).toHaveCount(2);
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');

  // The controls appear once, not on every run; the newest run is selected.
  const panel = page.getByTestId('results-panel');
  await expect(panel.getByRole('button', { name: 'Export', exact: true })).toHaveCount(1);
  await expect(panel.getByLabel('Export format')).toHaveCount(1);
  await expect(panel.getByRole('button', { name: 'Annotated video' })).toHaveCount(1);
  const bar = page.getByTestId('export-bar');
  await expect(bar).toContainText('Export “Is there a cat?”');
  await expect(page.getByRole('radio', { name: 'Select “Is there a cat?” for export' })).toBeChecked();

  // A run without points: CSV and MOT would be empty, so nothing is written and the bar says why.
  const downloads = countDownloads(page);
  for (const [label, name] of [['CSV', 'CSV'], ['MOT (lossy: points as small boxes)', 'MOT'], ['CVAT video 1.1 XML', 'CVAT video 1.1 XML']]) {
    await bar.getByLabel('Export format').selectOption({ label });
    await bar.getByRole('button', { name: 'Export', exact: true }).click();
    await expect(bar.getByRole('alert')).toHaveText(`“Is there a cat?” has no points, so its ${name} file would be empty; nothing was saved. JSON keeps the answer's text.`);
    await expect(bar.getByRole('status')).toHaveText('');
  }
  expect(downloads.n).toBe(0);

  // Its JSON keeps the answer, says the run is complete, and the save is confirmed by name.
  await bar.getByLabel('Export format').selectOption({ label: 'JSON (lossless)' });
  const [json] = await Promise.all([page.waitForEvent('download'), bar.getByRole('button', { name: 'Export', exact: true }).click()]);
  expect(json.suggestedFilename()).toBe('box-h264-is-there-a-cat.json');
  await expect(bar.getByRole('status')).toHaveText('Saved box-h264-is-there-a-cat.json');
  await expect(bar.getByRole('alert')).toHaveCount(0);
  const file = importResultJson(readFileSync(await saved(json), 'utf8'));
  expect(file.ok && { status: file.result.status, rawText: file.result.rawText, points: file.result.points.length }).toEqual({ status: 'complete', rawText: NO_POINTS, points: 0 });

  // Choosing the other run points the bar at it: its CSV has its one point.
  await page.getByRole('radio', { name: 'Select “Point to the box.” for export' }).check();
  await expect(bar).toContainText('Export “Point to the box.”');
  await expect(page.getByTestId('run').nth(1)).toHaveAttribute('aria-current', 'true');
  await bar.getByLabel('Export format').selectOption({ label: 'CSV' });
  const [csv] = await Promise.all([page.waitForEvent('download'), bar.getByRole('button', { name: 'Export', exact: true }).click()]);
  await expect(bar.getByRole('status')).toHaveText('Saved box-h264-point-to-the-box.csv');
  const rows = readFileSync(await saved(csv), 'utf8').trim().split(/\r?\n/);
  expect(rows).toEqual([CSV_COLUMNS.join(','), expect.stringMatching(/^box_h264\.mp4,Point to the box\.,1,box,0,0,160,120,/)]);

  // A warning is about its run: choosing another run drops it.
  await page.getByRole('radio', { name: 'Select “Is there a cat?” for export' }).check();
  await bar.getByRole('button', { name: 'Export', exact: true }).click();
  await expect(bar.getByRole('alert')).toContainText('“Is there a cat?” has no points');
  await page.getByRole('radio', { name: 'Select “Point to the box.” for export' }).check();
  await expect(bar.getByRole('alert')).toHaveCount(0);

  // Deleting the selected run falls back to the newest.
  await page.getByRole('button', { name: 'Delete “Point to the box.”' }).click();
  await expect(bar).toContainText('Export “Is there a cat?”');
  expect(downloads.n).toBe(2);
});

test("a stopped run's file says cancelled, and an imported failed file is exported as failed", async ({ page }) => {
  await openClip(page);
  await installBackend(page, [LONG_ANSWER], 30);
  const box = page.getByTestId('ask-box');
  await askInBox(page, 'Point to the box.');
  await expect(box.getByTestId('answer')).toContainText('and more');
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'cancelled');

  const bar = page.getByTestId('export-bar');
  const exportJson = async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), bar.getByRole('button', { name: 'Export', exact: true }).click()]);
    return JSON.parse(readFileSync(await saved(download), 'utf8'));
  };
  const stopped = await exportJson();
  expect(stopped).toMatchObject({ version: 4, status: 'cancelled', points: [expect.objectContaining({ trackId: 1 })] });

  // The same file as if its run had failed: imported, the run shows the failure, and exports it again.
  const failedPath = join(mkdtempSync(join(tmpdir(), 'molmo2-failed-')), 'failed.json');
  writeFileSync(failedPath, JSON.stringify({ ...stopped, status: 'failed' }));
  await page.getByTestId('import-input').setInputFiles(failedPath);
  await expect(page.getByTestId('run')).toHaveCount(2);
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'error');
  await expect(page.getByTestId('run').first()).toHaveAttribute('aria-current', 'true');
  expect((await exportJson()).status).toBe('failed');
});

test('Esc closes the shortcut sheet and the Stats panel; while a question runs it closes them first, then stops', async ({ page }) => {
  await openClip(page);
  const sheet = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  const stats = page.getByTestId('stats-panel');

  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('?');
  await expect(sheet).toBeVisible();
  await expect(sheet.getByRole('button', { name: 'Close' })).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(sheet).toHaveCount(0);
  // The focus is back where it was.
  await expect(page.getByTestId('filmstrip')).toBeFocused();

  await page.getByRole('button', { name: 'Statistics' }).click();
  await expect(stats).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(stats).toHaveCount(0);

  await installBackend(page, [LONG_ANSWER], 30);
  const box = page.getByTestId('ask-box');
  await askInBox(page, 'Point to the box.');
  await expect(box).toHaveAttribute('data-status', 'running');
  await page.getByRole('button', { name: 'Statistics' }).click();
  await page.getByRole('button', { name: 'Keyboard shortcuts' }).click();
  await expect(stats).toBeVisible();
  await expect(sheet).toBeVisible();
  // The newest first: the sheet, then the Stats panel; the question runs on.
  await page.keyboard.press('Escape');
  await expect(sheet).toHaveCount(0);
  await expect(stats).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(stats).toHaveCount(0);
  await expect(box).toHaveAttribute('data-status', 'running');
  // With nothing open, Esc stops the question.
  await page.keyboard.press('Escape');
  await expect(box).toHaveAttribute('data-status', 'cancelled');
});

test('the shortcut sheet lists every key and mouse gesture', async ({ page }) => {
  await openClip(page);
  await page.getByRole('button', { name: 'Keyboard shortcuts' }).click();
  const sheet = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  const keys = await sheet.locator('dt kbd').allTextContents();
  expect(keys).toEqual([
    'Drop a file on the page',
    'Space / K',
    '← / →, , / .',
    'Shift + ← / →',
    'Home / End',
    '[ / ]',
    'Click',
    'Shift / Ctrl / ⌘ + click',
    'Drag',
    '/',
    '1 – 5',
    'Enter',
    'Shift + Enter',
    'Esc',
    'Click a marker on the video',
    'Click a swimlane',
    'Click a point on a swimlane',
    'Drag a marker',
    'Click the video away from the markers',
    'Click a marker, then Delete / Backspace',
    'Ctrl / ⌘ + Z',
    'Ctrl / ⌘ + Shift + Z, Ctrl + Y',
    '?',
    'Esc',
  ]);
  await expect(sheet).toContainText('Preset: Point, Count, Track, Free text, Describe');
  await sheet.getByRole('button', { name: 'Close' }).click();
  await expect(sheet).toHaveCount(0);
});

test("'/' goes to the question and 1–5 choose presets, never while typing and without moving the player", async ({ page }) => {
  await openClip(page);
  const box = page.getByTestId('ask-box');
  const question = box.getByLabel('Question');
  await question.fill('Where is the box?');

  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('/');
  await expect(question).toBeFocused();
  // The key itself is not typed; in the question, digits and '/' are text.
  await expect(question).toHaveValue('Where is the box?');
  await page.keyboard.press('End');
  await page.keyboard.type(' 2/3');
  await expect(question).toHaveValue('Where is the box? 2/3');
  await expect(box.getByRole('button', { name: 'Count' })).toHaveAttribute('aria-pressed', 'false');

  // Outside a field, 2 is the Count preset: its object word is selected, so typing replaces it.
  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('2');
  await expect(box.getByRole('button', { name: 'Count' })).toHaveAttribute('aria-pressed', 'true');
  await expect(question).toBeFocused();
  await page.keyboard.type('boxes');
  await expect(question).toHaveValue('How many boxes are there?');
  await shownFrame(page, 0);

  await page.getByTestId('filmstrip').focus();
  for (const [key, name, value] of [['1', 'Point', 'Point to the objects.'], ['3', 'Track', 'Track the object.'], ['5', 'Describe', 'Describe this image.'], ['4', 'Free text', '']]) {
    await page.getByTestId('filmstrip').focus();
    await page.keyboard.press(key);
    await expect(box.getByRole('button', { name })).toHaveAttribute('aria-pressed', 'true');
    await expect(question).toHaveValue(value);
  }
  await shownFrame(page, 0);
});

test('letters typed right after a preset click are kept, even when the next frame is late', async ({ page }) => {
  await openClip(page);
  // A busy page: animation frames come half a second late.
  await page.evaluate(() => {
    window.requestAnimationFrame = (cb) => window.setTimeout(() => cb(performance.now()), 500);
  });
  const box = page.getByTestId('ask-box');
  await box.getByRole('button', { name: 'Track' }).click();
  await page.keyboard.type('dog');
  await expect(box.getByLabel('Question')).toHaveValue('Track the dog.');
});
