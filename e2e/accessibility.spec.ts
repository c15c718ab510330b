// The page is readable: axe-core (WCAG 2.0 / 2.1 A and AA rules, colour contrast among them) finds
// nothing on each main state; disabled controls look and behave disabled; the answer is shown as a
// summary with its points, the model's text behind a toggle.
import { createRequire } from 'node:module';
import type { AxeResults } from 'axe-core';
import { expect, test, type Locator, type Page } from '@playwright/test';
import { h264Clip } from './fixtures/clips.ts';
import { askInBox, installBackend, openClip, shownFrame } from './fixtures/grounding-page.ts';

const AXE_PATH = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
// The page's Content-Security-Policy forbids the inline script that injects axe (privacy.spec.ts checks the policy).
test.use({ bypassCSP: true });
const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

// The 320×240 test clip; a long answer keeps a question running while the page is checked.
const POINT_ANSWER = '<points coords="1 1 500 500 2 250 750">cups</points>';
const LONG_ANSWER = `<points coords="1 1 500 500">box</points>${' and more'.repeat(300)}`;

/** The WCAG A/AA violations axe finds on the page now, one line each: rule id, then the elements. */
async function violations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE_PATH });
  const found = await page.evaluate(async (tags) => {
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<AxeResults> } }).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: tags } });
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => `${n.target.join(' ')}${n.failureSummary ? ` (${n.failureSummary.replace(/\s+/g, ' ')})` : ''}`).join('; ')}`);
  }, WCAG_AA);
  return found;
}

async function expectNoViolations(page: Page, state: string) {
  const found = await violations(page);
  expect(found, `axe violations with ${state}:\n${found.join('\n')}`).toEqual([]);
}

test('axe finds no WCAG A/AA violation on the main states of the page', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('model-panel')).toBeVisible();
  await expectNoViolations(page, 'the first load');

  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await shownFrame(page, 0);
  await expectNoViolations(page, 'a video open');

  // A model with random weights shows its banner.
  await installBackend(page, [LONG_ANSWER, POINT_ANSWER], 30, undefined, true);
  await expect(page.getByTestId('random-weights-banner')).toBeVisible();
  await expectNoViolations(page, 'the model loaded (random weights)');

  const box = page.getByTestId('ask-box');
  await askInBox(page, 'Point to the box.');
  await expect(box.getByTestId('answer')).toContainText('and more');
  await expect(box).toHaveAttribute('data-status', 'running');
  await expectNoViolations(page, 'a question running');
  await page.keyboard.press('Escape');
  await expect(box).toHaveAttribute('data-status', 'cancelled');

  await askInBox(page, 'Point to the cups.');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  await box.getByText('Model text').click();
  await expect(box.getByTestId('answer')).toBeVisible();
  await expectNoViolations(page, 'an answer shown');

  await page.getByRole('button', { name: 'Keyboard shortcuts' }).click();
  await expect(page.getByRole('dialog', { name: 'Keyboard shortcuts' })).toBeVisible();
  await expectNoViolations(page, 'the shortcut sheet open');
  await page.keyboard.press('Escape');

  await page.getByRole('button', { name: 'Statistics' }).click();
  await expect(page.getByTestId('stats-panel')).toBeVisible();
  await expectNoViolations(page, 'the stats panel open');
});

test('disabled controls look and behave disabled; only the pressed preset looks pressed', async ({ page }) => {
  await openClip(page);
  const box = page.getByTestId('ask-box');
  const askButton = box.getByRole('button', { name: 'Ask', exact: true });
  const cancel = box.getByRole('button', { name: 'Stop' });
  const load = page.getByTestId('model-panel').getByRole('button', { name: 'Load', exact: true });
  const pressedLook = () =>
    page.evaluate(() =>
      [...document.querySelectorAll<HTMLButtonElement>('.presets button')].map((b) => ({
        pressed: b.getAttribute('aria-pressed') === 'true',
        look: getComputedStyle(b).backgroundColor,
      })),
    );
  // On first load no preset was chosen, so none looks pressed (free text is the default, not a choice).
  const first = await pressedLook();
  expect(first.filter((l) => l.pressed)).toEqual([]);
  expect(new Set(first.map((l) => l.look)).size).toBe(1);

  // The model URL's Load needs a URL.
  await expect(load).toBeDisabled();
  await expect(load).toHaveCSS('cursor', 'not-allowed');
  await page.getByTestId('model-panel').getByLabel('Model URL').fill('http://127.0.0.1:1/model/');
  await expect(load).toBeEnabled();
  await expect(load).toHaveCSS('cursor', 'pointer');
  await page.getByTestId('model-panel').getByLabel('Model URL').fill('');

  // No model: Ask is disabled, and so is Stop (nothing runs); both look it, dimmer than a live button.
  await box.getByLabel('Question').fill('Point to the box.');
  await expect(askButton).toBeDisabled();
  await expect(cancel).toBeDisabled();
  await expect(askButton).toHaveCSS('cursor', 'not-allowed');
  await expect(cancel).toHaveCSS('cursor', 'not-allowed');
  const colour = (b: Locator) => b.evaluate((e) => getComputedStyle(e).color);
  const disabledColour = await colour(cancel);
  expect(disabledColour).not.toBe(await colour(box.getByRole('button', { name: 'Point' })));

  // A model but no question: still disabled; with a question, Ask is enabled and looks it.
  await installBackend(page, [LONG_ANSWER], 30);
  await box.getByLabel('Question').fill('  ');
  await expect(askButton).toBeDisabled();
  await box.getByLabel('Question').fill('Point to the box.');
  await expect(askButton).toBeEnabled();
  expect(await colour(askButton)).not.toBe(disabledColour);
  await expect(askButton).toHaveCSS('cursor', 'pointer');

  // While it runs: Ask, the presets and the question are disabled, Stop is not.
  await box.getByLabel('Question').press('Enter');
  await expect(box).toHaveAttribute('data-status', 'running');
  await expect(askButton).toBeDisabled();
  await expect(box.getByRole('button', { name: 'Point' })).toBeDisabled();
  await expect(box.getByLabel('Question')).toBeDisabled();
  await expect(cancel).toBeEnabled();
  // A click on a disabled preset changes nothing.
  await box.getByRole('button', { name: 'Count' }).click({ force: true });
  await expect(box.getByRole('button', { name: 'Count' })).toHaveAttribute('aria-pressed', 'false');
  await cancel.click();
  await expect(box).toHaveAttribute('data-status', 'cancelled');
  await expect(cancel).toBeDisabled();

  // The pressed look follows aria-pressed and nothing else.
  await box.getByRole('button', { name: 'Count' }).click();
  const looks = await pressedLook();
  expect(looks.filter((l) => l.pressed)).toHaveLength(1);
  const pressed = looks.find((l) => l.pressed)!.look;
  for (const l of looks) expect(l.look === pressed).toBe(l.pressed);
});

test('the answer reads as a summary with its points; the model text is behind a toggle', async ({ page }) => {
  await openClip(page);
  const TRACKS = '<tracks coords="0.0 1 500 500 2 250 250;0.5 1 510 500;1.0 1 520 500 2 260 250">cars</tracks>';
  const COUNT = 'Counting the <points coords="1 1 500 500 2 100 100 3 900 900 4 250 750">boxes</points> shows a total of 4.';
  const UNBROKEN = 'x'.repeat(600);
  await installBackend(page, [POINT_ANSWER, COUNT, TRACKS, 'A test pattern with a moving white box.', UNBROKEN]);
  const box = page.getByTestId('ask-box');
  const headline = box.getByTestId('answer-headline');
  const points = box.getByTestId('answer-points').getByRole('listitem');
  const done = (n: number) => expect(page.getByTestId('run')).toHaveCount(n).then(() => expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done'));

  // Point: how many, what, when; each point with its frame, time and pixels (320×240 clip).
  await askInBox(page, 'Point to the cups.');
  await done(1);
  await expect(headline).toHaveText('2 points: cups at 00:00.000 (frame 0)');
  await expect(points).toHaveText(['#1 cups · frame 0 · 00:00.000 · (160, 120) px', '#2 cups · frame 0 · 00:00.000 · (80, 180) px']);
  // The raw grammar is not shown until the toggle opens, and then as text.
  const raw = box.getByTestId('answer');
  await expect(raw).toBeHidden();
  await expect(raw).toHaveText(POINT_ANSWER);
  await box.getByText('Model text').click();
  await expect(raw).toBeVisible();
  await expect(raw).toHaveText(POINT_ANSWER);

  // Count: the number stated, and the points counted.
  await askInBox(page, 'How many boxes?');
  await done(2);
  await expect(headline).toHaveText('Count: 4 · 4 points: boxes at 00:00.000 (frame 0)');
  await expect(points).toHaveCount(4);

  // Track: tracks over the range of times they were seen.
  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('[');
  await page.keyboard.press('End');
  await page.keyboard.press(']');
  await askInBox(page, 'Track the cars.');
  await done(3);
  await expect(headline).toHaveText(/^2 tracks: cars over 00:00\.000–00:01\.000 \(3 frames\)$/);
  await expect(points).toHaveCount(5);

  // Free text without points: the text itself is the answer, with no toggle.
  await askInBox(page, 'Describe this video.');
  await done(4);
  await expect(box.getByTestId('answer')).toBeVisible();
  await expect(box.getByTestId('answer')).toHaveText('A test pattern with a moving white box.');
  await expect(box.getByText('Model text')).toHaveCount(0);
  await expect(headline).toHaveCount(0);

  // A long unbroken answer wraps inside the panel instead of running past it.
  await askInBox(page, 'Say x.');
  await done(5);
  await expect(box.getByTestId('answer')).toHaveText(UNBROKEN);
  expect(await box.evaluate((e) => e.scrollWidth <= e.clientWidth)).toBe(true);
  const answerBox = await box.getByTestId('answer').boundingBox();
  const panelBox = await box.boundingBox();
  expect(answerBox!.x + answerBox!.width).toBeLessThanOrEqual(panelBox!.x + panelBox!.width + 1);
});
