// GPU preprocessing (src/runtime/gpu-preprocess*.ts) against the CPU path, on onnxruntime-web's own
// WebGPU device (SwiftShader here), with the GPU tensor passed through a real session.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { planImage } from '../src/molmo2/image.ts';
import { negGraph } from './bench-graphs.ts';

const dir = join(import.meta.dirname, '..', '.cache', 'e2e-clips');

/** A 2 s colour clip (testsrc2: gradients and edges everywhere), so the resize blends many values. */
function colourClip(): string {
  const path = join(dir, 'testsrc2_640x360.mp4');
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const r = spawnSync(process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=duration=2:size=640x360:rate=30', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', path], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
  return path;
}

async function init(page: Page) {
  page.on('console', (m) => m.type() !== 'debug' && console.log(`[page ${m.type()}] ${m.text()}`));
  await page.goto('/e2e/bench-preprocess.html');
  await page.waitForFunction(() => 'benchPreprocess' in window);
  return page.evaluate((g) => window.benchPreprocess.init(g), Array.from(negGraph()));
}

test('images: GPU pixel values equal the CPU path within one uint8 level', async ({ page }) => {
  const { adapter, selfCheck } = await init(page);
  console.log(`adapter: ${adapter}; self-check: ${selfCheck.differing} differing values, max ${selfCheck.maxAbsDiff}`);
  // Upscale, 1×2 crops, identity global view, 16:9 hi-res (2×4 crops), a strip, and raw RGBA bytes.
  const cases = [
    [100, 60, 'bitmap'],
    [536, 354, 'bitmap'],
    [378, 378, 'bitmap'],
    [1280, 720, 'bitmap'],
    [7, 300, 'bitmap'],
    [640, 480, 'rgba'],
  ] as const;
  for (const [w, h, as] of cases) {
    const d = await page.evaluate(([w, h, as]) => window.benchPreprocess.compareImage(w, h, w + h, as), [w, h, as] as const);
    console.log(
      `${w}×${h} (${as} → ${d.methods.join(',')}): ${d.crops} crops, ${d.differing} of ${d.values} values differ, max ${d.maxLevels} level(s); ` +
        `${d.differingFromUnfused} differ from an unfused-fma emulation`,
    );
    expect(d.crops).toBe(planImage(w, h).numCrops);
    expect(d.values).toBe(d.crops * 729 * 588);
    expect(d.maxLevels).toBeLessThanOrEqual(1);
    // The only allowed source of difference is fma(): a GPU that fuses it (as PyTorch's x86-64 kernel
    // does) gives identical values, one that multiplies and adds (SwiftShader) gives exactly the
    // unfused emulation, which moves a blend lying within an ulp of a .5 tie by one level.
    expect(d.differing === 0 || d.differingFromUnfused === 0).toBe(true);
    if (selfCheck.differing === 0) expect(d.differing).toBe(0);
  }
});

test('video frames: GPU pixel values from VideoFrames equal the CPU path', async ({ page }) => {
  const { selfCheck } = await init(page);
  await page.setInputFiles('#clip', colourClip());
  const d = await page.evaluate(() => window.benchPreprocess.compareFrames([0, 0.5, 1.3]));
  console.log(`${d.width}×${d.height} frames via ${d.methods.join(',')}: ${d.differing} of ${d.values} values differ, max ${d.maxLevels} level(s)`);
  expect(d.values).toBe(3 * 729 * 588);
  expect(d.methods).toHaveLength(3);
  if (d.methods.includes('external-texture')) {
    // The GPU converts YUV → RGB itself there, not through the browser's 8-bit RGB frame.
    expect(d.maxLevels).toBeLessThanOrEqual(2);
  } else {
    expect(d.maxLevels).toBeLessThanOrEqual(1);
    if (selfCheck.differing === 0) expect(d.differing).toBe(0);
  }
});

test('runtime entry: a GPU tensor for the items asked for, the CPU path on any failure, off on fallback adapters', async ({ page }) => {
  const { fallbackAdapter } = await init(page);
  const r = await page.evaluate(() => window.benchPreprocess.itemPixels());
  expect(r.location).toBe('gpu-buffer');
  expect(r.numCrops).toBe(2);
  expect(r.dims).toEqual([2, 729, 588]);
  expect(r.closedGivesUndefined).toBe(true);
  // On a software adapter the CPU path is faster, so the runtime's default keeps it.
  expect(await page.evaluate(() => window.benchPreprocess.enabledByDefault())).toBe(!fallbackAdapter);
});
