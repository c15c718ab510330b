// Measurement, not a timed test: overlay cost per frame with 20 tracks (trails on) on a 720p clip.
// Runs only with BENCH=1 (`BENCH=1 npx playwright test e2e/overlay-timing.spec.ts`).
import { expect, test, type Page } from '@playwright/test';
import { formatTimestamp } from '../src/molmo2/prompt.ts';
import { formatTime, rangeSampleTimes } from '../src/molmo2/video.ts';
import { testsrc720pClip } from './fixtures/clips.ts';

/** Seeks through all 300 frames, timing each seek until two animation frames later; with `drawTimes`, also each Konva layer draw. */
function seekThrough(page: Page, drawTimes: boolean) {
  return page.evaluate(async (drawTimes) => {
    type Layer = { prototype: { drawScene: (...a: unknown[]) => unknown } };
    const Konva = (window as unknown as { Konva: { Layer: Layer } }).Konva;
    const draws: number[] = [];
    const original = Konva.Layer.prototype.drawScene;
    if (drawTimes) {
      Konva.Layer.prototype.drawScene = function (this: unknown, ...args: unknown[]) {
        const t0 = performance.now();
        const out = original.apply(this, args);
        draws.push(performance.now() - t0);
        return out;
      };
    }
    const { useVideoStore } = (await import(String('/src/state/video-store.ts'))) as typeof import('../src/state/video-store.ts');
    const updates: number[] = [];
    const frame = () => new Promise((res) => requestAnimationFrame(res));
    for (let f = 0; f < 300; f++) {
      const t0 = performance.now();
      useVideoStore.getState().seek(f);
      await frame();
      await frame();
      updates.push(performance.now() - t0);
    }
    Konva.Layer.prototype.drawScene = original;
    const stat = (a: number[]) => {
      const s = [...a].sort((x, y) => x - y);
      return { mean: a.reduce((x, y) => x + y, 0) / Math.max(1, a.length), p95: s[Math.floor(s.length * 0.95)] ?? 0, n: a.length };
    };
    return { draw: stat(draws), update: stat(updates) };
  }, drawTimes);
}

test('overlay draw time per frame with 20 tracks, 720p', async ({ page }) => {
  test.skip(!process.env.BENCH, 'set BENCH=1 to measure');
  test.setTimeout(300_000);
  const clip = testsrc720pClip();
  // 20 objects on circles, one position per sampled time (2 fps over the whole clip).
  const times = rangeSampleTimes(0, 299 / 30, { maxFrames: 64 });
  const coord = (v: number) => String(Math.round(500 + 300 * v)).padStart(3, '0');
  const groups = times.map((t, k) =>
    [formatTimestamp(t), ...Array.from({ length: 20 }, (_, id) => `${id + 1} ${coord(Math.cos((id / 20) * 2 * Math.PI + k * 0.2))} ${coord(Math.sin((id / 20) * 2 * Math.PI + k * 0.2))}`)].join(' '),
  );
  const answer = `<tracks coords="${groups.join(';')}">ball</tracks>`;
  await page.setViewportSize({ width: 1600, height: 1000 });
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(clip);
  await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');
  await page.evaluate(async (a) => {
    const client = (await import(String('/src/ui/model/inference-client.ts'))) as typeof import('../src/ui/model/inference-client.ts');
    const { scriptedBackend } = (await import(String('/e2e/fixtures/scripted-backend.ts'))) as typeof import('../e2e/fixtures/scripted-backend.ts');
    client.setInferenceBackend(scriptedBackend({ answers: [a], chunk: 4000, delayMs: 0 }));
    const { useModelStore } = (await import(String('/src/state/model-store.ts'))) as typeof import('../src/state/model-store.ts');
    await useModelStore.getState().load({ kind: 'url', url: '/scripted/' }, 'Scripted answers');
  }, answer);
  const baseline = await seekThrough(page, false);
  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('[');
  await page.keyboard.press('End');
  await page.keyboard.press(']');
  await page.getByTestId('ask-box').getByLabel('Question').fill('Track the balls.');
  await page.getByTestId('ask-box').getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  const r = await seekThrough(page, true);
  console.log(
    `overlay, 20 tracks, trail 6, 1280×720 (${times.length} sampled times to ${formatTime(times[times.length - 1])}): ` +
      `Konva layer draw mean ${r.draw.mean.toFixed(2)} ms, p95 ${r.draw.p95.toFixed(2)} ms over ${r.draw.n} draws; ` +
      `seek → frame and overlay shown (2 animation frames, incl. React render and frame decode) mean ${r.update.mean.toFixed(1)} ms, p95 ${r.update.p95.toFixed(1)} ms; ` +
      `without results ${baseline.update.mean.toFixed(1)} ms`,
  );
});
