// Runs don't collide on the video: only the newest run is drawn unless others are shown by hand;
// runs drawn together take different colour families; markers, swimlanes and the count badge name
// their run. Uses the scripted backend; every question is about frame 0 (320×240).
import { expect, test, type Page } from '@playwright/test';
import { familyColor, trackStyle } from '../src/overlay/overlay-model.ts';
import { h264Clip } from './fixtures/clips.ts';
import { expectMarker, expectNoMarker, hex, installBackend, near, overlayPixel, shownFrame } from './fixtures/grounding-page.ts';

// Normalised 0–1000 coordinates: Run 1 points at the centre; Run 2 tracks two boxes; Run 3 counts.
const POINT_ANSWER = '<points coords="1 1 500 500">cups</points>';
const TRACK_ANSWER = '<points coords="1 1 250 250 2 750 750">box</points>';
const COUNT_ANSWER = 'Counting the <points coords="1 1 100 500">boxes</points> shows a total of 3.';
const RUN1 = { x: 160, y: 120 };
const RUN2 = [
  { x: 80, y: 60 },
  { x: 240, y: 180 },
];
const RUN3 = { x: 32, y: 120 };

async function ask(page: Page, preset: string, word: string) {
  const box = page.getByTestId('ask-box');
  const before = await page.getByTestId('run').count();
  await box.getByRole('button', { name: preset }).click();
  await expect(box.getByLabel('Question')).toBeFocused();
  await page.keyboard.type(word);
  await box.getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run')).toHaveCount(before + 1);
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
}

/** Texts drawn on the Konva overlay: marker labels, and the count badge on its own. */
function overlayTexts(page: Page) {
  return page.evaluate(() => {
    type Node = { text(): string; getText(): Node };
    type Stage = { find(selector: string): Node[]; findOne(selector: string): Node | undefined };
    const stages = (window as unknown as { Konva: { stages: Stage[] } }).Konva.stages;
    return {
      labels: stages.flatMap((s) => s.find('Text').map((t) => t.text())),
      badge: stages.map((s) => s.findOne('.count-badge')?.getText().text()).find((t) => t !== undefined) ?? null,
    };
  });
}

const showRun = (page: Page, question: string) => page.getByLabel(`Show “${question}” on the video`);

test('only the newest run is drawn; runs shown together differ in colour and name their markers, lanes and badge', async ({ page }) => {
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await shownFrame(page, 0);
  await installBackend(page, [POINT_ANSWER, TRACK_ANSWER, COUNT_ANSWER]);

  await ask(page, 'Point', 'cups');
  await expectMarker(page, RUN1.x, RUN1.y, hex(trackStyle(1).color));
  await ask(page, 'Track', 'box');

  // The newest run alone: the point run is hidden (and its box unticked); the track run keeps the palette.
  await expectNoMarker(page, RUN1.x, RUN1.y);
  await expectMarker(page, RUN2[0].x, RUN2[0].y, hex(trackStyle(1).color));
  await expectMarker(page, RUN2[1].x, RUN2[1].y, hex(trackStyle(2).color));
  await expect(showRun(page, 'Point to the cups.')).not.toBeChecked();
  await expect(showRun(page, 'Track the box.')).toBeChecked();
  await expect(page.getByTestId('run-name')).toHaveText(['Run 2 · Track', 'Run 1 · Point']);
  await expect(page.getByTestId('lane-name')).toHaveText(['Run 2 #1 box', 'Run 2 #2 box']);
  await expect.poll(() => overlayTexts(page)).toEqual({ labels: expect.arrayContaining(['Run 2 #1 box', 'Run 2 #2 box']), badge: 'Run 2 · Track: 2 box' });

  // Both shown: each run in its own colour family, so the two "#1" markers differ.
  await showRun(page, 'Point to the cups.').check();
  await expectMarker(page, RUN1.x, RUN1.y, hex(familyColor(0, 1)));
  await expectMarker(page, RUN2[0].x, RUN2[0].y, hex(familyColor(1, 1)));
  await expectMarker(page, RUN2[1].x, RUN2[1].y, hex(familyColor(1, 2)));
  const [one, two] = [await overlayPixel(page, RUN1.x, RUN1.y), await overlayPixel(page, RUN2[0].x, RUN2[0].y)];
  expect(near(one, two, 40), `run 1 ${one} and run 2 ${two} differ`).toBe(false);
  await expect(page.getByTestId('lane-name')).toHaveText(['Run 1 #1 cups', 'Run 2 #1 box', 'Run 2 #2 box']);
  await expect.poll(async () => (await overlayTexts(page)).labels).toEqual(expect.arrayContaining(['Run 1 #1 cups', 'Run 2 #1 box']));
  // The results list's swatches are the drawn colours.
  const swatch = page.getByTestId('run').nth(1).getByTestId('track').first().locator('.swatch');
  const rgb = hex(familyColor(0, 1));
  await expect(swatch).toHaveCSS('background-color', `rgb(${rgb.join(', ')})`);

  // A run shown by hand is pinned: the next run hides only the unpinned track run; the badge is the new run's.
  await ask(page, 'Count', 'boxes');
  await expectNoMarker(page, RUN2[0].x, RUN2[0].y);
  await expectMarker(page, RUN1.x, RUN1.y, hex(familyColor(0, 1)));
  await expectMarker(page, RUN3.x, RUN3.y, hex(familyColor(1, 1)));
  await expect(page.getByTestId('lane-name')).toHaveText(['Run 1 #1 cups', 'Run 3 #1 boxes']);
  await expect.poll(async () => (await overlayTexts(page)).badge).toBe('Run 3 · Count: 3 boxes');

  // Hiding the pinned run leaves the newest alone, back in the palette.
  await showRun(page, 'Point to the cups.').uncheck();
  await expectNoMarker(page, RUN1.x, RUN1.y);
  await expectMarker(page, RUN3.x, RUN3.y, hex(trackStyle(1).color));
});
