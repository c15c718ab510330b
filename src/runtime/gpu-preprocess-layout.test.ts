import { describe, expect, it } from 'vitest';
import { RELEASED_PROCESSOR_SETTINGS as S } from '../molmo2/config.ts';
import { cropLength, imagePixelValues, planImage, RELEASED_GEOMETRY as G, videoFramePixelValues } from '../molmo2/image.ts';
import { emulateShader, imageLayout, normalisationLut, videoFrameLayout, type FmaMode } from './gpu-preprocess-layout.ts';

/** Deterministic image with smooth gradients and noise, so blends land on many fractional values. */
function testImage(w: number, h: number, seed: number): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  let s = seed >>> 0;
  for (let i = 0; i < rgb.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const p = Math.floor(i / 3);
    rgb[i] = ((p % w) * 7 + Math.floor(p / w) * 3 + (s >>> 28)) & 255;
  }
  return rgb;
}

function viaShader(rgb: Uint8Array, w: number, h: number, mode: FmaMode, video = false): Float32Array {
  const layout = video ? videoFrameLayout(w, h, G) : imageLayout(planImage(w, h, S, G), S, G);
  const out = new Float32Array(layout.numCrops * cropLength(G));
  emulateShader(rgb, layout, normalisationLut(S), out, 0, mode);
  return out;
}

/** Values that differ, and the largest difference (a plain loop: deep equality on 10⁶ floats is slow). */
function diff(a: Float32Array, b: Float32Array): { count: number; max: number } {
  expect(a.length).toBe(b.length);
  let count = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) count++;
    max = Math.max(max, Math.abs(a[i] - b[i]));
  }
  return { count, max };
}

describe('GPU preprocessing tables', () => {
  // Sizes: upscale on both axes, 1×2 crops, identity global view, 2×3 crops, a 1-pixel-wide strip.
  for (const [w, h] of [[100, 60], [536, 354], [378, 378], [700, 500], [1, 40]] as const) {
    it(`the shader's arithmetic on the tables equals the CPU path for a ${w}×${h} image`, () => {
      const rgb = testImage(w, h, w * 31 + h);
      const cpu = imagePixelValues(rgb, w, h, S, G);
      expect(diff(viaShader(rgb, w, h, 'fused'), cpu).count).toBe(0);
    });
  }

  it('equals the CPU path for a 640×360 video frame (one 378² crop)', () => {
    const rgb = testImage(640, 360, 7);
    expect(diff(viaShader(rgb, 640, 360, 'fused', true), videoFramePixelValues(rgb, 640, 360, S, G)).count).toBe(0);
  });

  it('a GPU without fused multiply-add moves a few pixels by at most one uint8 level', () => {
    const rgb = testImage(536, 354, 3);
    const cpu = imagePixelValues(rgb, 536, 354, S, G);
    const d = diff(viaShader(rgb, 536, 354, 'unfused'), cpu);
    // One level is 2/255 after (u/255 − 0.5)/0.5; only blends within an ulp of a .5 tie can move.
    expect(d.max).toBeLessThanOrEqual(2 / 255 + 1e-6);
    expect(d.count).toBeLessThan(cpu.length / 1000);
  });

  it('lays crops out in the plan order: global view first, then the hi-res crops row-major', () => {
    const plan = planImage(700, 500, S, G);
    const layout = imageLayout(plan, S, G);
    expect(layout.numCrops).toBe(1 + plan.rows * plan.cols);
    const origins = Array.from({ length: layout.numCrops }, (_, k) => [layout.crops[k * 4 + 2], layout.crops[k * 4 + 3]]);
    expect(origins[0]).toEqual([0, 0]);
    expect(origins[1 + 1]).toEqual([266, 0]); // second crop of the first row: one window to the right
    expect(origins[1 + plan.cols]).toEqual([0, 266]); // first crop of the second row
  });
});
