// One screen: on a desktop the video, the running question's stage and answer and Stop are all in
// view without the page scrolling (the side panel scrolls on its own); the model panel shrinks to a
// line once loaded; on a phone the ask box is one short scroll below the video. The stage shows its
// elapsed time, and the answer limit follows the preset, can be changed, and reaches the model.
import { expect, test, type Locator, type Page } from '@playwright/test';
import { h264Clip } from './fixtures/clips.ts';
import { askInBox, installBackend, openClip, shownFrame } from './fixtures/grounding-page.ts';

// Plain text (no points), long and slow: the question is still running while the page is measured.
const LONG_TEXT = `The box moves${' and moves'.repeat(400)}.`;
const POINT_ANSWER = '<points coords="1 1 500 500 2 250 750">cups</points>';

async function inViewport(page: Page, what: string, l: Locator) {
  const box = await l.boundingBox();
  const { width, height } = page.viewportSize()!;
  expect(box, `${what} is shown`).not.toBeNull();
  expect(box!.x, `${what} left`).toBeGreaterThanOrEqual(0);
  expect(box!.y, `${what} top`).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width, `${what} right`).toBeLessThanOrEqual(width + 0.5);
  expect(box!.y + box!.height, `${what} bottom`).toBeLessThanOrEqual(height + 0.5);
}

const pageScroll = (page: Page) =>
  page.evaluate(() => ({ scrollY: window.scrollY, scrollHeight: document.scrollingElement!.scrollHeight, innerHeight: window.innerHeight }));

for (const size of [
  { width: 1440, height: 900 },
  { width: 1024, height: 700 },
]) {
  test(`at ${size.width}×${size.height} the video, the running question and Stop share one screen`, async ({ page }) => {
    await page.setViewportSize(size);
    await openClip(page);
    await installBackend(page, [LONG_TEXT], 40);
    const panel = page.getByTestId('model-panel');
    const box = page.getByTestId('ask-box');

    // Loaded: the model panel is one line, and its details open again from it.
    const toggle = panel.getByRole('button', { name: /^Model: Scripted answers · q4/ });
    await expect(toggle).toHaveAttribute('aria-expanded', 'false');
    expect((await panel.boundingBox())!.height).toBeLessThan(60);
    await expect(panel.getByTestId('loaded-model')).toBeHidden();
    await toggle.click();
    await expect(panel.getByTestId('loaded-model')).toBeVisible();
    expect((await panel.boundingBox())!.height).toBeGreaterThan(100);
    await toggle.click();
    await expect(panel.getByTestId('loaded-model')).toBeHidden();

    await askInBox(page, 'Describe what happens.');
    await expect(box).toHaveAttribute('data-status', 'running');
    // Enough text has streamed in to be longer than its box.
    await expect(box.getByTestId('answer')).toContainText('moves and moves and moves and moves and moves and moves and moves and moves and moves and moves and moves');
    await expect(box).toHaveAttribute('data-status', 'running');
    await inViewport(page, 'the video', page.getByTestId('frame-canvas'));
    await inViewport(page, 'the stage', box.getByTestId('ask-stage'));
    await inViewport(page, 'the stage bar', box.getByTestId('ask-stage').getByRole('progressbar'));
    await inViewport(page, 'the answer', box.getByTestId('answer'));
    await inViewport(page, 'Stop', box.getByRole('button', { name: 'Stop' }));
    const scroll = await pageScroll(page);
    expect(scroll.scrollY).toBe(0);
    expect(scroll.scrollHeight).toBeLessThanOrEqual(scroll.innerHeight);
    // The side panel scrolls on its own instead (the results list grows below the ask box).
    expect(await page.locator('#side-panel').evaluate((e) => getComputedStyle(e).overflowY)).toBe('auto');

    // The clock runs while the question does.
    const elapsed = box.getByTestId('ask-elapsed');
    await expect(elapsed).toHaveText(/^\d+ s elapsed$/);
    const first = Number((await elapsed.textContent())!.split(' ')[0]);
    await expect.poll(async () => Number((await elapsed.textContent())!.split(' ')[0]), { timeout: 10_000 }).toBeGreaterThan(first);
    // The decode rate is measured in this run after a few tokens: an upper bound from the answer limit.
    await expect(box.getByTestId('ask-estimate')).toHaveText(/^ · at most (\d+ s|\d+ min \d+ s) left$/);
    await page.keyboard.press('Escape');
    await expect(box).toHaveAttribute('data-status', 'cancelled');
    await expect(box.getByTestId('ask-elapsed')).toHaveCount(0);
  });
}

test('with nothing open the model panel keeps its details; opening a video shrinks it to its line', async ({ page }) => {
  await page.goto('/');
  await installBackend(page, [POINT_ANSWER]);
  const panel = page.getByTestId('model-panel');
  await expect(panel.getByTestId('loaded-model')).toBeVisible();
  await expect(panel.getByRole('button', { name: /^Model: / })).toHaveCount(0);
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await shownFrame(page, 0);
  await expect(panel.getByTestId('loaded-model')).toBeHidden();
  await expect(panel.getByRole('button', { name: /^Model: / })).toHaveAttribute('aria-expanded', 'false');
});

test('a model that loads while a video is open folds the panel and keeps the keyboard focus on its line', async ({ page }) => {
  await openClip(page);
  // The control used last (here the URL field) is inside the details that fold away.
  const url = page.getByTestId('model-panel').getByRole('textbox').first();
  await url.focus();
  await installBackend(page, [POINT_ANSWER]);
  const toggle = page.getByTestId('model-panel').getByRole('button', { name: /^Model: / });
  await expect(toggle).toHaveAttribute('aria-expanded', 'false');
  await expect(toggle).toBeFocused();
});

test('at phone width the ask box is one short scroll below the video', async ({ page }) => {
  await page.setViewportSize({ width: 412, height: 915 });
  await openClip(page);
  await installBackend(page, [POINT_ANSWER]);
  await expect(page.getByTestId('model-panel').getByRole('button', { name: /^Model: / })).toBeVisible();
  const video = (await page.getByTestId('frame-canvas').boundingBox())!;
  const ask = (await page.getByTestId('ask-box').boundingBox())!;
  expect(ask.y).toBeGreaterThan(video.y + video.height);
  expect(ask.y - (video.y + video.height)).toBeLessThanOrEqual(915);
  // Nothing is wider than the phone.
  expect(await page.evaluate(() => document.scrollingElement!.scrollWidth)).toBeLessThanOrEqual(412);
});

test('the answer limit follows the preset, can be changed, and is what the model is asked for', async ({ page }) => {
  await openClip(page);
  await installBackend(page, [POINT_ANSWER]);
  const box = page.getByTestId('ask-box');
  const limit = box.getByLabel('Answer limit');
  // Free text, the default: the model's whole 2048 tokens.
  await expect(limit).toHaveValue('2048');
  await box.getByRole('button', { name: 'Point' }).click();
  await expect(limit).toHaveValue('512');
  await box.getByRole('button', { name: 'Track' }).click();
  await expect(limit).toHaveValue('1024');
  await box.getByRole('button', { name: 'Describe' }).click();
  await expect(limit).toHaveValue('2048');
  await box.getByRole('button', { name: 'Count' }).click();
  await expect(limit).toHaveValue('512');
  const sent = () => page.evaluate(() => (window as unknown as { scripted: { answerLimits: (number | undefined)[] } }).scripted.answerLimits);

  await askInBox(page, 'How many boxes are there?');
  await expect(box).toHaveAttribute('data-status', 'done');
  expect(await sent()).toEqual([512]);

  // The user's own choice goes with the next question, and into the run.
  await limit.selectOption('128');
  await askInBox(page, 'How many boxes are there?');
  await expect(box).toHaveAttribute('data-status', 'done');
  expect(await sent()).toEqual([512, 128]);
  // Never above the model's own limit: the page offers nothing larger.
  const offered = await limit.locator('option').evaluateAll((os) => os.map((o) => Number((o as HTMLOptionElement).value)));
  expect(Math.max(...offered)).toBe(2048);
});
