// Selecting a range on the filmstrip by dragging: its start, end and length read out while dragging,
// and a handle at each end of the selected range moves that end alone.
import { expect, test, type Page } from '@playwright/test';
import { formatTime } from '../src/molmo2/video.ts';
import { openClip } from './fixtures/grounding-page.ts';

const DURATION = 3; // the generated clip: 30 frames at 10 fps

async function strip(page: Page) {
  const box = (await page.getByTestId('filmstrip').boundingBox())!;
  return { x: (f: number) => box.x + f * box.width, y: box.y + box.height / 2, width: box.width };
}

test('dragging a range reads out its times, and the handles move one end each', async ({ page }) => {
  await openClip(page);
  const s = await strip(page);
  const selection = page.getByTestId('selection');

  await page.mouse.move(s.x(0.2), s.y);
  await page.mouse.down();
  await page.mouse.move(s.x(0.6), s.y, { steps: 6 });
  // While dragging: start – end · length, from the pointer's positions.
  const readout = page.getByTestId('drag-readout');
  await expect(readout).toHaveText(`${formatTime(0.2 * DURATION)} – ${formatTime(0.6 * DURATION)} · 1.2 s`);
  await page.mouse.up();
  await expect(readout).toHaveCount(0);
  await expect(selection).toContainText(`Range ${formatTime(0.2 * DURATION)} – ${formatTime(0.6 * DURATION)}`);

  // The end handle moves the end; the start stays.
  const end = (await page.getByTestId('range-handle-end').boundingBox())!;
  await page.mouse.move(end.x + end.width / 2, s.y);
  await page.mouse.down();
  await page.mouse.move(s.x(0.9), s.y, { steps: 6 });
  await expect(readout).toHaveText(`${formatTime(0.2 * DURATION)} – ${formatTime(0.9 * DURATION)} · 2.1 s`);
  await page.mouse.up();
  await expect(selection).toContainText(`Range ${formatTime(0.2 * DURATION)} – ${formatTime(0.9 * DURATION)}`);

  // The start handle dragged past the end: the range is ordered again (start 0.9·D… end 0.95·D).
  const start = (await page.getByTestId('range-handle-start').boundingBox())!;
  await page.mouse.move(start.x + start.width / 2, s.y);
  await page.mouse.down();
  await page.mouse.move(s.x(0.95), s.y, { steps: 6 });
  await page.mouse.up();
  await expect(selection).toContainText(`Range ${formatTime(0.9 * DURATION)} – ${formatTime(0.95 * DURATION)}`);
});
