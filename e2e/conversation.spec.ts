// Follow-up questions form a thread: with "Follow up on Run N" ticked, a question about the same
// frames sends the earlier turns (oldest first) with it, each answer becomes the next turn, a re-run
// repeats its own conversation, the thread is kept in the result file and the history, and — through
// the real inference worker — the frames and the first question are not computed again (prefix reuse).
import { readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import { importResultJson } from '../src/molmo2/export/result.ts';
import { askInBox, installBackend, openClip, saved, shownFrame } from './fixtures/grounding-page.ts';
import { h264Clip } from './fixtures/clips.ts';
import { ensureRuntimeModel } from './runtime-model.ts';

type Asked = { question: string; history?: { question: string; answer: string }[] };
const asked = (page: Page) => page.evaluate(() => (window as unknown as { scripted: { asked: Asked[] } }).scripted.asked.map((a) => ({ question: a.question, history: a.history })));

const ANSWERS = ['There are two cups.', 'The left one is red.', 'It does not move.', 'A dog.', 'The left one is red again.'];
const Q = ['How many cups are there?', 'Which one is on the left?', 'Does it move?', 'What is here?'];

/** The prompt-token estimate on the ask box's "Sends:" line. */
async function estimate(page: Page): Promise<number> {
  const text = await page.getByTestId('ask-sends').innerText();
  return Number(/≈(\d+)/.exec(text)?.[1]);
}

/** The card of "Run n" (the list shows the newest first). */
const card = (page: Page, n: number) => page.getByTestId('run').filter({ has: page.getByTestId('run-name').getByText(`Run ${n} ·`) });

async function askAndWait(page: Page, question: string, runs: number) {
  await askInBox(page, question);
  await expect(page.getByTestId('run')).toHaveCount(runs);
  await expect(card(page, runs)).toHaveAttribute('data-status', 'done');
}

test('a thread: follow-ups send the earlier turns, a re-run repeats its own, the file and the history keep it', async ({ page }) => {
  test.setTimeout(180_000);
  await openClip(page);
  await installBackend(page, ANSWERS);
  const follow = page.getByTestId('follow-up');
  // Nothing to follow up before the first answer.
  await expect(follow).toHaveCount(0);
  await askAndWait(page, Q[0], 1);

  // Offered for the same frame, off by default; ticking it adds the earlier turn to the estimate.
  await expect(follow).toContainText('Follow up on Run 1 (sends the earlier turn with it)');
  await expect(follow.getByRole('checkbox')).not.toBeChecked();
  await page.getByTestId('ask-box').getByLabel('Question').fill(Q[1]);
  const alone = await estimate(page);
  await follow.getByRole('checkbox').check();
  expect(await estimate(page)).toBeGreaterThan(alone + 5);
  await page.getByTestId('ask-box').getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run')).toHaveCount(2);
  await expect(card(page, 2)).toHaveAttribute('data-status', 'done');
  await expect(card(page, 2)).toContainText('follow-up to Run 1 (1 earlier turn)');

  // The switch stays on and now follows the newest turn.
  await expect(follow).toContainText('Follow up on Run 2 (sends the 2 earlier turns with it)');
  await askAndWait(page, Q[2], 3);
  await expect(card(page, 3)).toContainText('follow-up to Run 2 (2 earlier turns)');

  // Another frame: nothing to follow, the question goes alone.
  await page.keyboard.press('ArrowRight');
  await shownFrame(page, 1);
  await expect(follow).toHaveCount(0);
  await askAndWait(page, Q[3], 4);

  // A re-run of the follow-up repeats its conversation, not the newest one.
  await card(page, 2).getByRole('button', { name: 'Re-run' }).click();
  await expect(page.getByTestId('run')).toHaveCount(5);
  await expect(card(page, 5)).toHaveAttribute('data-status', 'done');
  await expect(card(page, 5)).toContainText('follow-up to Run 1 (1 earlier turn)');

  const turn = (k: number) => ({ question: Q[k], answer: ANSWERS[k] });
  expect(await asked(page)).toEqual([
    { question: Q[0] },
    { question: Q[1], history: [turn(0)] },
    { question: Q[2], history: [turn(0), turn(1)] },
    { question: Q[3] },
    { question: Q[1], history: [turn(0)] },
  ]);

  // The result file of the third run holds its conversation.
  await card(page, 3).getByRole('radio').check();
  const bar = page.getByTestId('export-bar');
  await bar.getByLabel('Export format').selectOption({ label: 'JSON (lossless)' });
  const [download] = await Promise.all([page.waitForEvent('download'), bar.getByRole('button', { name: 'Export', exact: true }).click()]);
  const file = importResultJson(readFileSync(await saved(download), 'utf8'));
  expect(file.ok && file.result.query.history).toEqual([turn(0), turn(1)]);

  // The history keeps the thread across a reload.
  await page.reload();
  await page.getByTestId('video-input').setInputFiles(h264Clip());
  await expect(page.getByTestId('run')).toHaveCount(5);
  await expect(card(page, 3)).toContainText('follow-up to Run 2 (2 earlier turns)');
});

test('a follow-up through the real worker: the earlier turn is sent and the frames and first question are reused', async ({ page }) => {
  test.setTimeout(600_000);
  await ensureRuntimeModel();
  await openClip(page);
  const panel = page.getByTestId('model-panel');
  await panel.getByRole('button', { name: 'Load Molmo2 e2e tiny (random weights)' }).click();
  await expect(panel).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });
  const box = page.getByTestId('ask-box');
  const stats = page.getByTestId('stats-panel');

  // The random model rambles: each answer is stopped once some text has come.
  const askAndStop = async (question: string) => {
    await askInBox(page, question);
    await expect(box).toHaveAttribute('data-status', 'running');
    await expect(box.getByTestId('answer')).not.toBeEmpty({ timeout: 240_000 });
    if ((await box.getAttribute('data-status')) === 'running') await box.getByRole('button', { name: 'Stop' }).click();
    await expect(box).toHaveAttribute('data-status', /cancelled|done/, { timeout: 120_000 });
  };
  const stat = async (name: string) => (await stats.locator(`[data-stat="${name}"]`).innerText()).trim();

  await askAndStop('Point to the box.');
  await page.getByRole('button', { name: 'Statistics', exact: true }).click();
  const first = /(\d+) of (\d+) prompt tokens/.exec(await stat('prefix reuse'));
  const firstPrompt = Number(first?.[2]);
  expect(firstPrompt).toBeGreaterThan(50);
  await page.getByRole('button', { name: 'Statistics', exact: true }).click();

  await page.getByTestId('follow-up').getByRole('checkbox').check();
  await askAndStop('And where is it now?');
  await page.getByRole('button', { name: 'Statistics', exact: true }).click();
  const reuse = /(\d+) of (\d+) prompt tokens/.exec(await stat('prefix reuse'));
  const [reused, prompt] = [Number(reuse?.[1]), Number(reuse?.[2])];
  // The follow-up's prompt holds the first question, its answer and the new question; everything up to
  // the first question's end (the frame's tokens included) was kept, only the rest was computed.
  expect(prompt).toBeGreaterThan(firstPrompt);
  expect(reused).toBeGreaterThan(firstPrompt - 8);
  expect(reused).toBeLessThan(prompt);
  // The frame's features were not even looked up: its tokens were in the kept prefix.
  await expect(stats.locator('[data-stat="vision"]')).not.toContainText('encoded');
  await expect(card(page, 2)).toContainText('follow-up to Run 1 (1 earlier turn)');
});
