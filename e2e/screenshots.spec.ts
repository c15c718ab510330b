// The README's pictures, taken from the running app so they stay current: a track drawn on a real
// clip (../shared/media, when present), the first screen, two runs compared, and the phone layout.
// No model on this machine can track a real dog, so the answer is a Molmo2-format answer written by
// hand from the clip's frames (positions of the dog and the person at the four sampled times) and
// replayed by the scripted backend; everything after the model — parsing, timestamps to frames,
// overlay, results list, swimlanes — is the app's own.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { askInBox, installBackend } from './fixtures/grounding-page.ts';

const clip = join(import.meta.dirname, '..', '..', 'shared', 'media', 'sam2_01_dog.mp4');
const out = join(import.meta.dirname, '..', 'docs', 'screenshots');

// Range 1–7 s with a cap of 4 frames: Molmo2's sampler takes 1, 3, 5 and 7 s (clip times 0, 2, 4, 6).
// The dog is out of view at 3 s, so its track has a gap there.
const TRACK_ANSWER =
  '<tracks coords="0.0 1 484 597;4.0 1 406 644;6.0 1 688 583">dog</tracks> ' +
  '<tracks coords="0.0 2 258 444;2.0 2 273 444;4.0 2 195 556;6.0 2 184 444">person</tracks>';
const POINT_ANSWER = '<points coords="1 1 430 610">dog</points>';

async function openDogClip(page: Page) {
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(clip);
  await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');
}

async function setRange(page: Page, start: number, end: number, cap: number) {
  await page.getByLabel('Frame cap').fill(String(cap));
  await page.evaluate(
    async ([start, end]) => {
      const { useVideoStore } = (await import(String('/src/state/video-store.ts'))) as typeof import('../src/state/video-store.ts');
      useVideoStore.getState().selectRange(start, end);
    },
    [start, end],
  );
}

/** Shows the frame presented at video time t, and waits until the canvas has it. */
async function seekTime(page: Page, t: number) {
  const frame = await page.evaluate(async (t) => {
    const { useVideoStore } = (await import(String('/src/state/video-store.ts'))) as typeof import('../src/state/video-store.ts');
    const s = useVideoStore.getState();
    const f = s.info!.frameTimes.findLastIndex((x) => x <= t);
    s.seek(f);
    return f;
  }, t);
  await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', String(frame));
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(out, name), type: 'jpeg', quality: 80 });

test.describe('README screenshots', () => {
  test.skip(!existsSync(clip), 'no ../shared/media folder');
  test.beforeAll(() => mkdirSync(out, { recursive: true }));

  test('tracks on a real clip, compare, the first screen and the phone layout', async ({ page }) => {
    test.setTimeout(180_000);
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.goto('/');
    await expect(page.getByTestId('model-panel').getByTestId('capabilities')).toContainText('Weights');
    await shot(page, 'first-screen.jpg');

    await openDogClip(page);
    await installBackend(page, [TRACK_ANSWER, POINT_ANSWER]);
    await setRange(page, 1, 7, 4);
    await expect(page.getByTestId('sample-mark')).toHaveCount(4);
    await page.getByTestId('ask-box').getByRole('button', { name: 'Track' }).click();
    await askInBox(page, 'Track the dog and the person.');
    await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
    // 5 s: both tracked, with the trails of the earlier samples.
    await seekTime(page, 5);
    await expect(page.getByTestId('answer-headline')).toBeVisible();
    await shot(page, 'tracks.jpg');

    // A second question about the frame at 5 s, compared with the track.
    await page.evaluate(async () => {
      const { useVideoStore } = (await import(String('/src/state/video-store.ts'))) as typeof import('../src/state/video-store.ts');
      useVideoStore.setState({ selection: { kind: 'none' } });
    });
    await page.getByTestId('ask-box').getByRole('button', { name: 'Point' }).click();
    await askInBox(page, 'Point to the dog.');
    await expect(page.getByTestId('run')).toHaveCount(2);
    await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
    await page.getByTestId('run').first().getByLabel(/compare/i).check();
    // A taller window, so the video and the comparison below it are in one picture.
    await page.setViewportSize({ width: 1440, height: 1280 });
    await expect(page.getByTestId('compare')).toBeInViewport();
    await shot(page, 'compare.jpg');

    await page.setViewportSize({ width: 412, height: 915 });
    await page.getByTestId('compare').getByRole('button', { name: 'Close' }).click();
    await shot(page, 'phone.jpg');
  });
});
