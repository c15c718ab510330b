import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RELEASED_PROCESSOR_SETTINGS } from './config.ts';
import { imagePixelValues, planImage, planVideoFrame, resizeBilinearU8, selectTiling, videoFramePixelValues } from './image.ts';

/** Outputs of torchvision and of the official Molmo2 processing functions (see the file's note). */
const fixtures = JSON.parse(readFileSync(join(import.meta.dirname, 'image.test-data.json'), 'utf8'));

/** Deterministic test image, the same formula the fixtures were produced from. */
function pattern(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = (x * x * 3 + y * 7 + x * y * 5 + c * 101 + ((x ^ y) & 15) * 13) & 255;
  return out;
}

function randomImage(w: number, h: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  const out = new Uint8Array(w * h * 3);
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Textbook bilinear resize in double precision (half-pixel centres, clamped edges), rounded to nearest. */
function bruteForceResize(src: Uint8Array, w: number, h: number, ow: number, oh: number): Uint8Array {
  const out = new Uint8Array(ow * oh * 3);
  const coord = (o: number, inSize: number, outSize: number) => {
    const s = Math.max(0, ((o + 0.5) * inSize) / outSize - 0.5);
    const i0 = Math.min(Math.floor(s), inSize - 1);
    return { i0, i1: Math.min(i0 + 1, inSize - 1), t: Math.min(s - i0, 1) };
  };
  for (let y = 0; y < oh; y++) {
    const cy = coord(y, h, oh);
    for (let x = 0; x < ow; x++) {
      const cx = coord(x, w, ow);
      for (let c = 0; c < 3; c++) {
        const p = (yy: number, xx: number) => src[(yy * w + xx) * 3 + c];
        const top = p(cy.i0, cx.i0) * (1 - cx.t) + p(cy.i0, cx.i1) * cx.t;
        const bottom = p(cy.i1, cx.i0) * (1 - cx.t) + p(cy.i1, cx.i1) * cx.t;
        out[(y * ow + x) * 3 + c] = Math.round(top * (1 - cy.t) + bottom * cy.t);
      }
    }
  }
  return out;
}

describe('resizeBilinearU8', () => {
  it('returns the same pixels for an identity resize', () => {
    const img = randomImage(17, 11, 1);
    expect(resizeBilinearU8(img, 17, 11, 17, 11)).toEqual(img);
  });

  it('upsamples 2×2 to 3×3 as computed by hand (ties round to even)', () => {
    // channels: [[0,1],[2,5]], [[10,20],[30,50]], [[255,0],[0,255]]
    const img = Uint8Array.from([0, 10, 255, 1, 20, 0, 2, 30, 0, 5, 50, 255]);
    const out = resizeBilinearU8(img, 2, 2, 3, 3);
    const channel = (c: number) => Array.from({ length: 9 }, (_, i) => out[i * 3 + c]);
    // Middle source coordinate is 0.5: 0.5 → 0, 3.5 → 4, 27.5 → 28, 127.5 → 128.
    expect(channel(0)).toEqual([0, 0, 1, 1, 2, 3, 2, 4, 5]);
    expect(channel(1)).toEqual([10, 15, 20, 20, 28, 35, 30, 40, 50]);
    expect(channel(2)).toEqual([255, 128, 0, 128, 128, 128, 0, 128, 255]);
  });

  it('downsamples 4×4 to 2×2 as the mean of each 2×2 block', () => {
    const img = Uint8Array.from({ length: 48 }, (_, i) => i * 5);
    const out = resizeBilinearU8(img, 4, 4, 2, 2);
    for (let by = 0; by < 2; by++)
      for (let bx = 0; bx < 2; bx++)
        for (let c = 0; c < 3; c++) {
          const v = (y: number, x: number) => img[((2 * by + y) * 4 + 2 * bx + x) * 3 + c];
          const mean = (v(0, 0) + v(0, 1) + v(1, 0) + v(1, 1)) / 4; // always k + 0.5 here
          const even = Math.floor(mean) % 2 === 0 ? Math.floor(mean) : Math.ceil(mean);
          expect(out[(by * 2 + bx) * 3 + c]).toBe(even);
        }
  });

  it('stays within ±1 of a double-precision bilinear formula', () => {
    for (const [w, h, ow, oh] of [
      [53, 37, 120, 90],
      [200, 150, 64, 97],
      [30, 300, 378, 378],
    ]) {
      const img = randomImage(w, h, w * h);
      const mine = resizeBilinearU8(img, w, h, ow, oh);
      const ref = bruteForceResize(img, w, h, ow, oh);
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(mine[i] - ref[i]));
      expect(maxDiff).toBeLessThanOrEqual(1);
    }
  });

  it('matches torchvision bit for bit', () => {
    for (const f of fixtures.resize) {
      const expected = new Uint8Array(Buffer.from(f.out, 'base64'));
      const out = resizeBilinearU8(pattern(f.w, f.h), f.w, f.h, f.outW, f.outH);
      const differing = out.reduce((n, v, i) => n + (v !== expected[i] ? 1 : 0), 0);
      expect(differing, `${f.w}×${f.h} → ${f.outW}×${f.outH}`).toBe(0);
    }
  });

  it('rejects bad sizes and buffers with a clear message', () => {
    expect(() => resizeBilinearU8(new Uint8Array(12), 2, 2, 0, 3)).toThrow(/positive integers/);
    expect(() => resizeBilinearU8(new Uint8Array(11), 2, 2, 3, 3)).toThrow(/needs 12 RGB bytes/);
    expect(() => resizeBilinearU8(new Uint8Array(12), 2.5, 2, 3, 3)).toThrow(/positive integers/);
  });
});

describe('planImage', () => {
  // Token counts computed with the official tiling code (listed in src/molmo2/README.md), six sizes.
  const table: [number, number, [number, number], [number, number], [number, number], number, number][] = [
    // width, height, tiling, hi-res resize [h, w], pooled hi-res grid, tokens, crops
    [378, 378, [1, 1], [378, 378], [14, 14], 410, 2],
    [200, 200, [1, 1], [378, 378], [14, 14], 410, 2],
    [536, 354, [1, 2], [378, 644], [14, 23], 536, 3],
    [640, 480, [2, 2], [644, 644], [23, 23], 752, 5],
    [480, 640, [2, 2], [644, 644], [23, 23], 752, 5],
    [1024, 768, [2, 3], [644, 910], [23, 33], 982, 7],
    [1280, 720, [2, 4], [644, 1176], [23, 42], 1189, 9],
    [1920, 1080, [2, 4], [644, 1176], [23, 42], 1189, 9],
    [3000, 4000, [3, 2], [910, 644], [33, 23], 992, 7],
  ];
  it.each(table)('%i×%i → tiling %j, resize %j, grid %j, %i tokens, %i crops', (w, h, tiling, resized, grid, tokens, crops) => {
    const p = planImage(w, h);
    expect([p.rows, p.cols]).toEqual(tiling);
    expect(p.resized).toEqual(resized);
    expect(p.hiResGrid).toEqual(grid);
    expect(p.globalGrid).toEqual([14, 14]);
    expect(p.numTokens).toBe(tokens);
    expect(p.numCrops).toBe(crops);
    expect(p.pooledShape).toEqual([14 * 14 + grid[0] * grid[1], 4]);
  });

  // Tilings of numpy float32 runs of the reference tiling code for more shapes: portrait, very wide,
  // tiny, and the boundaries where the hi-res window just fits (scale exactly 1).
  it.each([
    [500, 500, 2, 2],
    [1000, 300, 1, 4],
    [300, 1000, 4, 1],
    [2000, 200, 1, 8],
    [200, 2000, 8, 1],
    [4000, 3000, 2, 3],
    [50, 50, 1, 1],
    [1, 1000, 1, 1],
    [1000, 1, 1, 1],
    [1, 1, 1, 1],
    [379, 378, 1, 2],
    [644, 378, 1, 2],
    [645, 378, 1, 3],
    [910, 644, 2, 3],
    [911, 644, 2, 4],
  ])('%i×%i tiles as %i×%i', (w, h, rows, cols) => {
    const p = planImage(w, h);
    expect([p.rows, p.cols]).toEqual([rows, cols]);
    expect(p.rows * p.cols).toBeLessThanOrEqual(8);
  });

  it('breaks scale ties towards fewer tiles, then fewer rows', () => {
    // 388×388 without margins: 1×2 and 2×1 and 1×1 all need 0.685; 2×2, 2×3, 2×4 … need ≥ 1.37.
    expect(selectTiling(388, 388, 266, 8)).toEqual([2, 2]);
    // Margin-only images: every scale is +∞ → the first candidate.
    expect(selectTiling(0, 0, 266, 8)).toEqual([1, 1]);
  });

  it.each([
    [378, 378],
    [640, 480],
    [480, 640],
    [3000, 4000],
    [1000, 300],
    [5, 700],
  ])('%i×%i: every pooled index points at the patch under its window', (w, h) => {
    const p = planImage(w, h);
    const [gh, gw] = p.globalGrid;
    const [hh, hw] = p.hiResGrid;
    const seen = new Map<number, number>();
    for (let t = 0; t < p.pooledShape[0]; t++) {
      const isGlobal = t < gh * gw;
      const k = isGlobal ? t : t - gh * gw;
      const [gy, gx] = isGlobal ? [Math.floor(k / gw), k % gw] : [Math.floor(k / hw), k % hw];
      for (let d = 0; d < 4; d++) {
        const idx = p.pooledIdx[t * 4 + d];
        const Y = 2 * gy + (d >> 1);
        const X = 2 * gx + (d & 1);
        const rows = isGlobal ? 27 : p.rows * 19 + 8;
        const cols = isGlobal ? 27 : p.cols * 19 + 8;
        if (Y >= rows || X >= cols) {
          expect(idx, 'padding sits past the bottom/right edge').toBe(-1);
          continue;
        }
        expect(idx).toBeGreaterThanOrEqual(0);
        seen.set(idx, (seen.get(idx) ?? 0) + 1);
        const crop = Math.floor(idx / 729);
        const y = Math.floor((idx % 729) / 27);
        const x = idx % 27;
        if (isGlobal) {
          expect([crop, y, x]).toEqual([0, Y, X]);
        } else {
          const r = Math.floor((crop - 1) / p.cols);
          const c = (crop - 1) % p.cols;
          expect(crop).toBeGreaterThanOrEqual(1);
          // The crop patch covers the same pixels of the resized image …
          expect([r * 19 + y, c * 19 + x]).toEqual([Y, X]);
          // … and is not in a margin facing a neighbouring crop.
          if (r > 0) expect(y).toBeGreaterThanOrEqual(4);
          if (r < p.rows - 1) expect(y).toBeLessThan(23);
          if (c > 0) expect(x).toBeGreaterThanOrEqual(4);
          if (c < p.cols - 1) expect(x).toBeLessThan(23);
        }
      }
    }
    // Each resized patch (global 27² + hi-res grid) is pooled exactly once.
    expect(seen.size).toBe(729 + (p.rows * 19 + 8) * (p.cols * 19 + 8));
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(hh).toBe(Math.ceil((p.rows * 19 + 8) / 2));
  });

  it('counts <im_col> on the global view only when the processor asks for it', () => {
    const withCols = planImage(640, 480, { ...RELEASED_PROCESSOR_SETTINGS, useSingleCropColTokens: true });
    expect(withCols.numTokens).toBe(752 + 14);
    const noCols = planImage(640, 480, { ...RELEASED_PROCESSOR_SETTINGS, imageUseColTokens: false });
    expect(noCols.numTokens).toBe(752 - 23);
  });

  it('rejects impossible sizes', () => {
    expect(() => planImage(0, 10)).toThrow(/positive integers/);
    expect(() => planImage(10, Number.NaN)).toThrow(/positive integers/);
  });
});

describe('pixel values', () => {
  function digest(values: Float32Array) {
    let sum = 0;
    let weighted = 0;
    for (let i = 0; i < values.length; i++) {
      sum += values[i];
      weighted += values[i] * ((i % 997) + 1);
    }
    return { sum, weighted };
  }

  it('lays out patches as (row-in-patch, col-in-patch, channel), normalised to [-1, 1]', () => {
    const img = randomImage(378, 378, 7); // 378² needs no resize and tiles as 1×1
    const pv = imagePixelValues(img, 378, 378);
    expect(pv.length).toBe(2 * 729 * 588);
    for (const [py, px, dy, dx, c] of [
      [0, 0, 0, 0, 0],
      [0, 1, 0, 0, 2],
      [3, 5, 13, 1, 1],
      [26, 26, 13, 13, 2],
      [10, 2, 7, 9, 0],
    ]) {
      const u = img[((py * 14 + dy) * 378 + px * 14 + dx) * 3 + c];
      const at = (py * 27 + px) * 588 + (dy * 14 + dx) * 3 + c;
      expect(pv[at]).toBeCloseTo((u / 255) * 2 - 1, 6);
      expect(pv[729 * 588 + at], 'the 1×1 hi-res crop equals the global view').toBe(pv[at]);
    }
    expect(Math.min(...pv.subarray(0, 1000))).toBeGreaterThanOrEqual(-1);
  });

  it('matches the official image processor on a 1-crop and a 2-crop image', () => {
    for (const f of fixtures.pixelValues) {
      const p = planImage(f.w, f.h);
      expect([...p.globalGrid, ...p.hiResGrid]).toEqual(f.grid);
      expect(p.numCrops).toBe(f.numCrops);
      const pv = imagePixelValues(pattern(f.w, f.h), f.w, f.h);
      expect(pv.length).toBe(f.length);
      for (const [i, v] of f.samples) expect(pv[i], `value ${i}`).toBe(v);
      const d = digest(pv);
      expect(d.sum).toBeCloseTo(f.sum, 3);
      expect(d.weighted).toBeCloseTo(f.weightedSum, 0);
      if (f.pooledIdx) expect(Array.from(p.pooledIdx)).toEqual(f.pooledIdx);
    }
  });

  it('matches the official video processor for a frame (378² stretch, 3×3 pooling → 81 tokens)', () => {
    const f = fixtures.videoFrame;
    const pv = videoFramePixelValues(pattern(f.w, f.h), f.w, f.h);
    expect(pv.length).toBe(729 * 588);
    for (const [i, v] of f.samples) expect(pv[i], `value ${i}`).toBe(v);
    expect(digest(pv).sum).toBeCloseTo(f.sum, 3);
    const plan = planVideoFrame();
    expect(plan.pooledShape).toEqual([81, 9]);
    expect(plan.numTokens).toBe(83);
    expect(Array.from(plan.pooledIdx)).toEqual(f.pooledIdx);
  });

  it('rejects a buffer that does not fit the image size', () => {
    expect(() => imagePixelValues(new Uint8Array(10), 2, 2)).toThrow(/needs 12 RGB bytes/);
    expect(() => videoFramePixelValues(new Uint8Array(10), 2, 2)).toThrow(/video frame of 2×2 needs 12/);
  });
});
