import { describe, expect, it } from 'vitest';
import {
  COLOURS,
  COLOUR_RGB,
  MIN_CENTRE_GAP,
  SHAPES,
  labelOf,
  makeClipScene,
  makeImageScene,
  objectCentre,
  renderFrame,
  sceneRng,
  type Scene,
  type SceneObject,
} from './scenes.ts';

const IMAGE_SCENES = Array.from({ length: 200 }, (_, i) => makeImageScene(11, i));
const CLIP_SCENES = Array.from({ length: 100 }, (_, i) => makeClipScene(11, i));

/** FNV-1a over bytes: a short fingerprint of a scene or a frame. */
function digest(bytes: Uint8Array): string {
  let hash = 0x811c9dc5;
  for (const b of bytes) hash = Math.imul(hash ^ b, 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, '0');
}
const jsonBytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
/** Byte-for-byte equality (vitest's deep equality is slow on frames of 400k bytes). */
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

const pixel = (rgb: Uint8Array, scene: Scene, x: number, y: number) => {
  const at = (Math.floor(y) * scene.width + Math.floor(x)) * 3;
  return [rgb[at], rgb[at + 1], rgb[at + 2]];
};
const backgroundOnly = (scene: Scene, frame: number) => renderFrame({ ...scene, objects: [] }, frame);
const spread = (c: readonly number[]) => Math.max(...c) - Math.min(...c);

describe('sceneRng', () => {
  it('gives the same sequence for the same seed and stream, another for another stream or seed', () => {
    const draw = (seed: number, stream: string) => {
      const rng = sceneRng(seed, stream);
      return Array.from({ length: 8 }, () => rng.next());
    };
    expect(draw(3, 'image/1')).toEqual(draw(3, 'image/1'));
    expect(draw(3, 'image/1')).not.toEqual(draw(3, 'image/2'));
    expect(draw(3, 'image/1')).not.toEqual(draw(4, 'image/1'));
  });

  it('keeps next() in [0, 1) and int() within its bounds, reaching both ends', () => {
    const rng = sceneRng(1, 'bounds');
    const ints = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const v = rng.next();
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
      ints.add(rng.int(2, 5));
    }
    expect([...ints].sort()).toEqual([2, 3, 4, 5]);
  });
});

describe('scenes are reproducible', () => {
  it('gives identical scenes and bytes for the same seed and index, different ones for another index', () => {
    expect(makeImageScene(5, 9)).toEqual(makeImageScene(5, 9));
    expect(sameBytes(renderFrame(makeImageScene(5, 9), 0), renderFrame(makeImageScene(5, 9), 0))).toBe(true);
    expect(sameBytes(renderFrame(makeImageScene(5, 9), 0), renderFrame(makeImageScene(5, 10), 0))).toBe(false);
    const clip = makeClipScene(5, 9);
    expect(clip).toEqual(makeClipScene(5, 9));
    for (let k = 0; k < clip.frames; k++) expect(sameBytes(renderFrame(clip, k), renderFrame(makeClipScene(5, 9), k))).toBe(true);
    expect(sameBytes(renderFrame(clip, 1), renderFrame(clip, 2))).toBe(false);
    expect(sameBytes(renderFrame(clip, 0), renderFrame(makeClipScene(5, 10), 0))).toBe(false);
  });

  // Pinned bytes: training sets are regenerated from (seed, index) rather than stored, so a change here
  // changes every set made before. Update the digests only on purpose.
  it('produces the pinned scenes and pixels', () => {
    const image = makeImageScene(1, 0);
    const clip = makeClipScene(1, 0);
    expect(digest(jsonBytes(image))).toBe('4d446ab4');
    expect(digest(renderFrame(image, 0))).toBe('7f472ac9');
    expect(digest(jsonBytes(clip))).toBe('46787485');
    expect(digest(renderFrame(clip, 3))).toBe('79d1a32b');
  });
});

/** Checks what every scene promises: ids 1..n, inside the frame, apart on every frame. */
function expectWellFormed(scene: Scene) {
  expect(scene.objects.map((o) => o.id)).toEqual(scene.objects.map((_, i) => i + 1));
  for (const obj of scene.objects) {
    expect(obj.path).toHaveLength(scene.frames);
    for (let k = 0; k < scene.frames; k++) {
      const c = objectCentre(obj, k);
      expect(c.x - obj.size).toBeGreaterThan(0);
      expect(c.y - obj.size).toBeGreaterThan(0);
      expect(c.x + obj.size).toBeLessThan(scene.width);
      expect(c.y + obj.size).toBeLessThan(scene.height);
    }
  }
  for (let i = 0; i < scene.objects.length; i++) {
    for (let j = i + 1; j < scene.objects.length; j++) {
      const [a, b] = [scene.objects[i], scene.objects[j]];
      for (let k = 0; k < scene.frames; k++) {
        const distance = Math.hypot(a.path[k].x - b.path[k].x, a.path[k].y - b.path[k].y);
        expect(distance).toBeGreaterThanOrEqual(MIN_CENTRE_GAP * Math.max(a.size, b.size));
      }
    }
  }
}

const sameKind = (a: SceneObject, b: SceneObject) => a.colour === b.colour && a.shape === b.shape;

describe('image scenes', () => {
  it('keep every object inside the frame and apart from the others', () => {
    for (const scene of IMAGE_SCENES) {
      expect(scene).toMatchObject({ kind: 'image', width: 378, height: 378, frames: 1 });
      expectWellFormed(scene);
    }
  });

  it('vary: 1–6 objects, every shape, colour and background, sizes 18–34 px, groups of 2–4 for counting', () => {
    const counts = new Set(IMAGE_SCENES.map((s) => s.objects.length));
    expect([...counts].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    const objects = IMAGE_SCENES.flatMap((s) => s.objects);
    expect(new Set(objects.map((o) => o.shape))).toEqual(new Set(SHAPES));
    expect(new Set(objects.map((o) => o.colour))).toEqual(new Set(COLOURS));
    expect(new Set(IMAGE_SCENES.map((s) => s.background.kind))).toEqual(new Set(['noise', 'stripes', 'checker']));
    for (const o of objects) {
      expect(o.size).toBeGreaterThanOrEqual(18);
      expect(o.size).toBeLessThanOrEqual(34);
    }
    const largestGroup = (s: Scene) => Math.max(...s.objects.map((o) => s.objects.filter((other) => sameKind(o, other)).length));
    const grouped = IMAGE_SCENES.filter((s) => largestGroup(s) >= 2 && largestGroup(s) <= 4);
    expect(grouped.length).toBeGreaterThan(IMAGE_SCENES.length / 5);
  });

  it('scale sizes with the frame and honour width and height', () => {
    const scene = makeImageScene(2, 3, { width: 640, height: 189 });
    expect(scene).toMatchObject({ width: 640, height: 189 });
    expectWellFormed(scene);
    for (const o of scene.objects) expect(o.size).toBeLessThanOrEqual(17);
  });
});

describe('clip scenes', () => {
  it('default to 6 frames at 2 fps, keep objects inside and apart on every frame', () => {
    for (const scene of CLIP_SCENES) {
      expect(scene).toMatchObject({ kind: 'clip', frames: 6, fps: 2 });
      expect(scene.objects.length).toBeGreaterThanOrEqual(1);
      expect(scene.objects.length).toBeLessThanOrEqual(4);
      expectWellFormed(scene);
    }
  });

  it('move object 1 across at least 40% of the frame, and give it a colour and shape of its own', () => {
    for (const scene of CLIP_SCENES) {
      const [first, ...others] = scene.objects;
      const start = objectCentre(first, 0);
      const end = objectCentre(first, scene.frames - 1);
      expect(Math.hypot(end.x - start.x, end.y - start.y)).toBeGreaterThanOrEqual(0.4 * 378 - 1e-9);
      expect(others.some((o) => sameKind(o, first))).toBe(false);
    }
    const staticObjects = CLIP_SCENES.flatMap((s) => s.objects.slice(1)).filter((o) => o.path.every((p) => p.x === o.path[0].x && p.y === o.path[0].y));
    expect(staticObjects.length).toBeGreaterThan(0);
  });

  it('honour frames, fps and size', () => {
    const scene = makeClipScene(3, 4, { width: 320, height: 240, frames: 10, fps: 5 });
    expect(scene).toMatchObject({ width: 320, height: 240, frames: 10, fps: 5 });
    expectWellFormed(scene);
    expect(() => makeClipScene(3, 4, { frames: 0 })).toThrow(RangeError);
    expect(() => makeClipScene(3, 4, { fps: 0 })).toThrow(RangeError);
  });
});

describe('renderFrame', () => {
  const scenes = [...IMAGE_SCENES.slice(0, 60), ...CLIP_SCENES.slice(0, 30)];

  it('writes RGB bytes, width × height × 3, and refuses frames the scene does not have', () => {
    const scene = makeClipScene(1, 1, { width: 100, height: 60, frames: 3 });
    expect(renderFrame(scene, 2)).toHaveLength(100 * 60 * 3);
    expect(() => renderFrame(scene, 3)).toThrow(RangeError);
    expect(() => renderFrame(scene, -1)).toThrow(RangeError);
    expect(() => objectCentre(scene.objects[0], 3)).toThrow(RangeError);
  });

  it('paints each object’s colour at its centre (the triangle’s centroid) on every frame', () => {
    const wrong: string[] = [];
    for (const scene of scenes) {
      for (let k = 0; k < scene.frames; k++) {
        const rgb = renderFrame(scene, k);
        for (const obj of scene.objects) {
          const c = objectCentre(obj, k);
          const found = pixel(rgb, scene, c.x, c.y).join();
          if (found !== COLOUR_RGB[obj.colour].join()) wrong.push(`${obj.colour} ${obj.shape} on frame ${k}: ${found}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('draws each shape’s outline: circles round, squares square, triangles pointing up', () => {
    const seen = new Set<string>();
    for (const scene of scenes) {
      const rgb = renderFrame(scene, 0);
      const bg = backgroundOnly(scene, 0);
      for (const obj of scene.objects) {
        const { x, y } = objectCentre(obj, 0);
        const s = obj.size;
        const colour = [...COLOUR_RGB[obj.colour]];
        const at = (dx: number, dy: number) => pixel(rgb, scene, x + dx * s, y + dy * s);
        const background = (dx: number, dy: number) => pixel(bg, scene, x + dx * s, y + dy * s);
        if (obj.shape === 'circle') {
          expect(at(0.9, 0)).toEqual(colour);
          expect(at(0, -0.9)).toEqual(colour);
        } else if (obj.shape === 'square') {
          expect(at(0.6, 0.6)).toEqual(colour);
          expect(at(-0.6, -0.6)).toEqual(colour);
          expect(at(0.9, 0)).toEqual(background(0.9, 0));
        } else {
          expect(at(0, -0.6)).toEqual(colour); // towards the apex
          expect(at(0, 0.75)).toEqual(background(0, 0.75)); // below the base, which lies size/2 under the centroid
          expect(at(0.6, -0.6)).toEqual(background(0.6, -0.6)); // beside the apex
        }
        seen.add(obj.shape);
      }
    }
    expect(seen).toEqual(new Set(SHAPES));
  });

  // Squares are left out: their edges are axis-aligned, so 2×2 samples blend a row only when the edge
  // falls between two samples.
  it('anti-aliases slanted and curved edges: circles and triangles have pixels between colour and background', () => {
    let checked = 0;
    for (const scene of scenes.slice(0, 20)) {
      const rgb = renderFrame(scene, 0);
      const bg = backgroundOnly(scene, 0);
      for (const obj of scene.objects.filter((o) => o.shape !== 'square')) {
        checked++;
        const { x, y } = objectCentre(obj, 0);
        const colour = COLOUR_RGB[obj.colour];
        let blended = 0;
        for (let py = Math.floor(y - obj.size); py <= y + obj.size; py++) {
          for (let px = Math.floor(x - obj.size); px <= x + obj.size; px++) {
            const p = pixel(rgb, scene, px, py);
            const b = pixel(bg, scene, px, py);
            const isColour = p.every((v, ch) => v === colour[ch]);
            const isBackground = p.every((v, ch) => v === b[ch]);
            if (!isColour && !isBackground) blended++;
          }
        }
        expect(blended).toBeGreaterThan(obj.size);
      }
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('keeps backgrounds low in saturation, far from the saturated shape colours', () => {
    for (const colour of COLOURS) expect(spread(COLOUR_RGB[colour])).toBeGreaterThanOrEqual(130);
    for (const scene of scenes) {
      const bg = backgroundOnly(scene, 0);
      let widest = 0;
      for (let i = 0; i < bg.length; i += 3) widest = Math.max(widest, spread([bg[i], bg[i + 1], bg[i + 2]]));
      expect(widest).toBeLessThanOrEqual(30);
    }
  });

  it('is textured: the background is not one flat colour', () => {
    for (const scene of scenes.slice(0, 20)) {
      const bg = backgroundOnly(scene, 0);
      const values = new Set<number>();
      for (let i = 0; i < bg.length; i += 3) values.add(bg[i]);
      expect(values.size).toBeGreaterThan(1);
    }
  });
});

describe('labelOf', () => {
  it('names a colour and shape, singular or plural', () => {
    expect(labelOf('red', 'circle', false)).toBe('red circle');
    expect(labelOf('yellow', 'triangle', true)).toBe('yellow triangles');
  });
});
