// Compare: the user picks the two runs, both are drawn on the video in their own colour families
// (the others hidden), the differences are listed object by object, and closing puts back what was
// drawn before. A re-run is compared with its original by default. Scripted backend; every question
// is about frame 0 (320×240).
import { createRequire } from 'node:module';
import type { AxeResults } from 'axe-core';
import { expect, test, type Page } from '@playwright/test';
import { familyColor } from '../src/overlay/overlay-model.ts';
import { askInBox, expectMarker, expectNoMarker, hex, installBackend, openClip } from './fixtures/grounding-page.ts';

// Normalised 0–1000 coordinates. Run 3's #1 is 4 px from Run 1's #2 (3.2, 2.4): the same object under
// another id; Run 1's #1 and Run 3's #2 have no partner.
const CUPS = '<points coords="1 1 500 500 2 250 250">cups</points>'; // (160, 120), (80, 60)
const BOX = '<points coords="1 1 750 750">box</points>'; // (240, 180)
const MUGS = '<points coords="1 1 260 260 2 900 700">mugs</points>'; // (83.2, 62.4), (288, 168)
const RUN1_ONLY = { x: 160, y: 120 };
const RUN2 = { x: 240, y: 180 };
const RUN3_ONLY = { x: 288, y: 168 };

const AXE_PATH = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
test.use({ bypassCSP: true }); // the page's CSP forbids the inline script that injects axe

async function ask(page: Page, question: string) {
  const before = await page.getByTestId('run').count();
  await askInBox(page, question);
  await expect(page.getByTestId('run')).toHaveCount(before + 1);
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
}

const card = (page: Page, question: string) => page.getByTestId('run').filter({ hasText: question }).first();
const showBox = (page: Page, question: string) => page.getByLabel(`Show “${question}” on the video`);
const picked = (page: Page, side: 'A' | 'B') => page.getByTestId('compare').getByLabel(`Run ${side}`, { exact: true }).locator('option:checked');

test('compare picks two runs, draws both, lists per-object differences and restores the drawn runs when closed', async ({ page }) => {
  await openClip(page);
  await installBackend(page, [CUPS, BOX, MUGS, CUPS]);
  await ask(page, 'Point to the cups.');
  await ask(page, 'Point to the box.');
  await ask(page, 'Point to the mugs.');
  // Before comparing: Run 2 shown by hand (pinned) beside the newest, Run 3; Run 1 hidden.
  await showBox(page, 'Point to the box.').check();
  await expectMarker(page, RUN2.x, RUN2.y, hex(familyColor(0, 1)));
  await expectMarker(page, RUN3_ONLY.x, RUN3_ONLY.y, hex(familyColor(1, 2)));
  await expectNoMarker(page, RUN1_ONLY.x, RUN1_ONLY.y);

  // Opened from Run 1's card: Run 1 is A, and B defaults to the run after it (it has none before).
  await card(page, 'Point to the cups.').getByLabel('compare').check();
  const compare = page.getByRole('region', { name: 'Compare two runs' });
  await expect(compare).toBeVisible();
  await expect(picked(page, 'A')).toHaveText(/^Run 1 · .* — Point to the cups\.$/);
  await expect(picked(page, 'B')).toHaveText(/^Run 2 · .* — Point to the box\.$/);
  const options = await compare.getByLabel('Run B', { exact: true }).locator('option').allTextContents();
  await compare.getByLabel('Run B', { exact: true }).selectOption({ label: options.find((o) => o.startsWith('Run 3'))! });
  await expect(picked(page, 'B')).toHaveText(/^Run 3 /);
  await expect(compare.getByTestId('compare-run').locator('h3')).toHaveText([/^Run 1 .*cups/, /^Run 3 .*mugs/]);

  // Both compared runs drawn, each in its own family; Run 2 hidden while comparing.
  await expectMarker(page, RUN1_ONLY.x, RUN1_ONLY.y, hex(familyColor(0, 1)));
  await expectMarker(page, RUN3_ONLY.x, RUN3_ONLY.y, hex(familyColor(1, 2)));
  await expectNoMarker(page, RUN2.x, RUN2.y);
  await expect(showBox(page, 'Point to the cups.')).toBeChecked();
  await expect(showBox(page, 'Point to the box.')).not.toBeChecked();
  await expect(page.getByTestId('lane-name')).toHaveText(['Run 1 #1 cups', 'Run 1 #2 cups', 'Run 3 #1 mugs', 'Run 3 #2 mugs']);

  // Objects paired by position, not id: Run 1 #2 is Run 3 #1, 4 px away; the others are alone.
  await expect(compare.getByTestId('compare-diff')).toHaveText([
    'Run 1 #2 cups ↔ Run 3 #1 mugs: 1 shared frame, mean 4.0 px, max 4.0 px',
    'Run 1 #1 cups: only in Run 1 (1 point)',
    'Run 3 #2 mugs: only in Run 3 (1 point)',
  ]);
  // Each line's swatch is its marker's colour.
  const swatch = compare.getByTestId('compare-diff').nth(2).locator('.swatch');
  await expect(swatch).toHaveCSS('background-color', `rgb(${hex(familyColor(1, 2)).join(', ')})`);

  // Picking Run 3 as A as well swaps the two.
  await compare.getByLabel('Run A', { exact: true }).selectOption({ label: options.find((o) => o.startsWith('Run 3'))! });
  await expect(picked(page, 'A')).toHaveText(/^Run 3 /);
  await expect(picked(page, 'B')).toHaveText(/^Run 1 /);
  await expect(compare.getByTestId('compare-diff').first()).toHaveText('Run 3 #1 mugs ↔ Run 1 #2 cups: 1 shared frame, mean 4.0 px, max 4.0 px');

  // The compare view is readable (WCAG A/AA, contrast included).
  await page.addScriptTag({ path: AXE_PATH });
  const found = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: string, opts: object): Promise<AxeResults> } }).axe;
    const r = await axe.run('[data-testid=compare]', { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`);
  });
  expect(found).toEqual([]);

  // Closing puts back what was drawn: Run 2 and Run 3, not Run 1.
  await compare.getByRole('button', { name: 'Close' }).click();
  await expect(compare).toHaveCount(0);
  await expectNoMarker(page, RUN1_ONLY.x, RUN1_ONLY.y);
  await expectMarker(page, RUN2.x, RUN2.y, hex(familyColor(0, 1)));
  await expectMarker(page, RUN3_ONLY.x, RUN3_ONLY.y, hex(familyColor(1, 2)));
  await expect(showBox(page, 'Point to the cups.')).not.toBeChecked();
  await expect(showBox(page, 'Point to the box.')).toBeChecked();

  // A re-run of Run 1 is compared with Run 1, its original, not with Run 3 just before it.
  await card(page, 'Point to the cups.').getByRole('button', { name: 'Re-run' }).click();
  await expect(page.getByTestId('run')).toHaveCount(4);
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  await page.getByTestId('run').first().getByLabel('compare').check();
  await expect(picked(page, 'A')).toHaveText(/^Run 4 /);
  await expect(picked(page, 'B')).toHaveText(/^Run 1 /);
  await expect(compare.getByTestId('compare-diff')).toHaveText([
    'Run 4 #1 cups ↔ Run 1 #1 cups: 1 shared frame, mean 0.0 px, max 0.0 px',
    'Run 4 #2 cups ↔ Run 1 #2 cups: 1 shared frame, mean 0.0 px, max 0.0 px',
  ]);
});
