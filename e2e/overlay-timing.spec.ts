// Measurement, not a timed test: overlay cost per frame with 20 tracks (trails on) on a 720p clip.
// Runs only with BENCH=1 (`BENCH=1 npx playwright test e2e/overlay-timing.spec.ts`).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { rangeSampleTimes, formatTime } from '../src/molmo2/video.ts';
import { formatTimestamp } from '../src/molmo2/prompt.ts';

test('overlay draw time per frame with 20 tracks, 720p', async ({ page }) => {
  test.skip(!process.env.BENCH, 'set BENCH=1 to measure');
  test.setTimeout(300_000);
  const dir = join(import.meta.dirname, '..', '.cache', 'e2e-clips');
  const clip = join(dir, 'testsrc_720p_10s.mp4');
  if (!existsSync(clip)) {
    mkdirSync(dir, { recursive: true });
    const r = spawnSync('/usr/bin/ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=10:size=1280x720:rate=30', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', clip]);
    expect(r.status).toBe(0);
  }
  // 20 objects on circles, one position per sampled time (2 fps over the whole clip).
  const times = rangeSampleTimes(0, 299 / 30, { maxFrames: 64 });
  const groups = times.map((t, k) =>
    [formatTimestamp(t), ...Array.from({ length: 20 }, (_, id) => {
      const a = (id / 20) * 2 * Math.PI + k * 0.2;
      return `${id + 1} ${String(Math.round(500 + 300 * Math.cos(a))).padStart(3, '0')} ${String(Math.round(500 + 300 * Math.sin(a))).padStart(3, '0')}`;
    })].join(' '),
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
    const { useModelStore } = (await import(String('/src/ui/model/model-store.ts'))) as typeof import('../src/ui/model/model-store.ts');
    await useModelStore.getState().load({ kind: 'url', url: '/scripted/' }, 'Scripted answers');
  }, answer);
  const seekLoop = () =>
    page.evaluate(async () => {
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
      return updates.reduce((x, y) => x + y, 0) / updates.length;
    });
  const baseline = await seekLoop();
  await page.getByTestId('filmstrip').focus();
  await page.keyboard.press('[');
  await page.keyboard.press('End');
  await page.keyboard.press(']');
  await page.getByTestId('ask-box').getByLabel('Question').fill('Track the balls.');
  await page.getByTestId('ask-box').getByLabel('Question').press('Enter');
  await expect(page.getByTestId('run').first()).toHaveAttribute('data-status', 'done');
  const r = await page.evaluate(async () => {
    const Konva = (window as unknown as { Konva: { Layer: { prototype: { drawScene: (...a: unknown[]) => unknown } } } }).Konva;
    const draws: number[] = [];
    const original = Konva.Layer.prototype.drawScene;
    Konva.Layer.prototype.drawScene = function (this: unknown, ...args: unknown[]) {
      const t0 = performance.now();
      const out = original.apply(this, args);
      draws.push(performance.now() - t0);
      return out;
    };
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
      return { mean: a.reduce((x, y) => x + y, 0) / a.length, p95: s[Math.floor(s.length * 0.95)] };
    };
    return { draw: stat(draws), draws: draws.length, update: stat(updates) };
  });
  console.log(
    `overlay, 20 tracks, trail 6, 1280×720 (${times.length} sampled times, ${formatTime(times[times.length - 1])}): Konva layer draw mean ${r.draw.mean.toFixed(2)} ms, p95 ${r.draw.p95.toFixed(2)} ms over ${r.draws} draws; ` +
      `seek → frame and overlay drawn (2 animation frames, incl. React render and frame decode) mean ${r.update.mean.toFixed(1)} ms, p95 ${r.update.p95.toFixed(1)} ms; ` +
      `same without results ${baseline.toFixed(1)} ms`,
  );
});
