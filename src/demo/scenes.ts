// Procedural scenes of coloured shapes on textured backgrounds, for training the small demo model
// and for testing it: each scene is plain data (JSON-serialisable) and `renderFrame` turns a frame of
// it into RGB bytes. Platform-free, no DOM or Node.
//
// Reproducible everywhere: a scene depends only on (seed, index), through the PRNG below, and every
// coordinate and pixel is computed with + − × ÷, floor/round and sqrt only. IEEE 754 rounds those
// exactly, whereas Math.sin/cos/exp may differ between engines, so the same bytes come out of every
// JavaScript engine on every machine.

export type Shape = 'circle' | 'square' | 'triangle';
export type Colour = 'red' | 'green' | 'blue' | 'yellow';
export type RGB = readonly [number, number, number];

export const SHAPES: readonly Shape[] = ['circle', 'square', 'triangle'];
export const COLOURS: readonly Colour[] = ['red', 'green', 'blue', 'yellow'];

/** Saturated colours (max − min channel ≥ 130) that no background comes close to. */
export const COLOUR_RGB: Readonly<Record<Colour, RGB>> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [235, 200, 30],
};

/** What a question asks about: one colour and one shape. */
export interface SceneTarget {
  colour: Colour;
  shape: Shape;
}

/** 'red circle', or 'red circles' when plural. */
export function labelOf(colour: Colour, shape: Shape, plural: boolean): string {
  return `${colour} ${shape}${plural ? 's' : ''}`;
}

export interface ScenePoint {
  x: number;
  y: number;
}

export interface SceneObject {
  id: number;
  shape: Shape;
  colour: Colour;
  /** Circumradius in pixels: every pixel of the shape lies within `size` of its centre. */
  size: number;
  /** The centre on each frame, in pixels of a frame spanning [0, width] × [0, height]. */
  path: ScenePoint[];
}

/** Low-contrast greys and pastels (max − min channel ≤ 28), so no background looks like a shape colour. */
export type BackgroundSpec =
  | { kind: 'noise'; base: RGB; contrast: number; cell: number; seed: number }
  | { kind: 'stripes'; colours: [RGB, RGB]; period: number; direction: ScenePoint }
  | { kind: 'checker'; colours: [RGB, RGB]; cell: number };

export interface Scene {
  kind: 'image' | 'clip';
  width: number;
  height: number;
  frames: number;
  /** Clips only: frame k is shown at k / fps seconds. */
  fps?: number;
  background: BackgroundSpec;
  objects: SceneObject[];
}

// ---------------------------------------------------------------------------------------------
// Randomness

export interface SceneRng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number;
  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
}

/** 32-bit FNV-1a of a string's UTF-16 code units. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * A PRNG (sfc32) for one named stream of one seed: independent streams ("image/7", "clip/7",
 * "questions/7") keep scenes and questions from shifting when another stream changes.
 */
export function sceneRng(seed: number, stream: string): SceneRng {
  const key = `${seed}|${stream}`;
  let a = fnv1a(key);
  let b = fnv1a(`${key}|b`);
  let c = fnv1a(`${key}|c`);
  let d = fnv1a(`${key}|d`);
  const nextUint = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // The first outputs still echo the hashed key; mix it in before use.
  for (let i = 0; i < 12; i++) nextUint();
  const next = () => nextUint() / 4294967296;
  return {
    next,
    range: (lo, hi) => lo + (hi - lo) * next(),
    int: (lo, hi) => lo + Math.floor((hi - lo + 1) * next()),
    chance: (probability) => next() < probability,
    pick: (items) => items[Math.floor(items.length * next())],
  };
}

// ---------------------------------------------------------------------------------------------
// Scene generation

export interface ImageSceneOptions {
  width?: number;
  height?: number;
}

export interface ClipSceneOptions extends ImageSceneOptions {
  /** Default 6. */
  frames?: number;
  /** Default 2. */
  fps?: number;
}

const DEFAULT_SIDE = 378;
/** Centres stay at least this many times the larger of two sizes apart, so shapes never touch. */
export const MIN_CENTRE_GAP = 2.2;
/** Bounded retries keep generation finite; an object that still does not fit is left out. */
const PLACEMENT_ATTEMPTS = 200;

/** Sizes and margins of a frame, scaled from those chosen for 378-pixel frames. */
function frameLayout(width: number, height: number) {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 32 && height >= 32)) {
    throw new RangeError(`scene frames must be whole numbers of pixels, at least 32×32 (got ${width}×${height})`);
  }
  const scale = Math.min(width, height) / DEFAULT_SIDE;
  return { width, height, scale, minSize: 18 * scale, maxSize: 34 * scale, margin: Math.max(2, 8 * scale) };
}
type FrameLayout = ReturnType<typeof frameLayout>;

/** Where a centre may lie so that an object of `size` stays inside the frame with the margin. */
function centreBox(layout: FrameLayout, size: number) {
  const inset = size + layout.margin;
  return { x0: inset, x1: layout.width - inset, y0: inset, y1: layout.height - inset };
}

const clampByte = (v: number) => Math.round(Math.min(255, Math.max(0, v)));
const smoothstep = (t: number) => t * t * (3 - 2 * t);

/** A grey of `lightness`, tinted by at most ±14 per channel. */
function mutedColour(lightness: number, tint: RGB): RGB {
  return [clampByte(lightness + tint[0]), clampByte(lightness + tint[1]), clampByte(lightness + tint[2])];
}

function makeBackground(rng: SceneRng, layout: FrameLayout): BackgroundSpec {
  const tint: RGB = [rng.range(-14, 14), rng.range(-14, 14), rng.range(-14, 14)];
  const lightness = rng.range(120, 200);
  const kind = rng.pick(['noise', 'stripes', 'checker'] as const);
  if (kind === 'noise') {
    return { kind, base: mutedColour(lightness, tint), contrast: rng.range(12, 28), cell: rng.range(24, 64) * layout.scale, seed: rng.int(0, 0x7fffffff) };
  }
  const colours: [RGB, RGB] = [mutedColour(lightness, tint), mutedColour(lightness + rng.range(14, 30), tint)];
  if (kind === 'checker') return { kind, colours, cell: rng.range(18, 40) * layout.scale };
  return { kind, colours, period: rng.range(16, 40) * layout.scale, direction: randomDirection(rng) };
}

/** A unit vector in a uniformly random direction (from a point in the unit disc, so no trigonometry). */
function randomDirection(rng: SceneRng): ScenePoint {
  for (let i = 0; i < 64; i++) {
    const x = rng.range(-1, 1);
    const y = rng.range(-1, 1);
    const length = Math.sqrt(x * x + y * y);
    if (length > 0.05 && length <= 1) return { x: x / length, y: y / length };
  }
  return { x: 1, y: 0 };
}

const ALL_TARGETS: readonly SceneTarget[] = COLOURS.flatMap((colour) => SHAPES.map((shape) => ({ colour, shape })));
const sameTarget = (a: SceneTarget, b: SceneTarget) => a.colour === b.colour && a.shape === b.shape;

/** True when the two objects keep their distance on every frame. */
function keepApart(a: SceneObject, b: SceneObject): boolean {
  const gap = MIN_CENTRE_GAP * Math.max(a.size, b.size);
  for (let k = 0; k < a.path.length; k++) {
    const dx = a.path[k].x - b.path[k].x;
    const dy = a.path[k].y - b.path[k].y;
    if (dx * dx + dy * dy < gap * gap) return false;
  }
  return true;
}

/** Tries `candidate` until one keeps apart from every placed object; adds it with the next id. */
function place(objects: SceneObject[], candidate: () => Omit<SceneObject, 'id'>): void {
  for (let attempt = 0; attempt < PLACEMENT_ATTEMPTS; attempt++) {
    const object = { id: objects.length + 1, ...candidate() };
    if (objects.every((other) => keepApart(object, other))) {
      objects.push(object);
      return;
    }
  }
}

function staticPath(rng: SceneRng, layout: FrameLayout, size: number, frames: number): ScenePoint[] {
  const box = centreBox(layout, size);
  const centre = { x: rng.range(box.x0, box.x1), y: rng.range(box.y0, box.y1) };
  return Array.from({ length: frames }, () => ({ ...centre }));
}

/**
 * A straight line or gentle curve (quadratic Bézier) of at least `minTravel` pixels where the frame
 * allows it, at even steps in time. The control point stays in the centre box, so the whole curve does
 * (a Bézier lies within the hull of its points).
 */
function movingPath(rng: SceneRng, layout: FrameLayout, size: number, frames: number, minTravel: number): ScenePoint[] {
  const box = centreBox(layout, size);
  const direction = randomDirection(rng);
  // The longest move along this direction that fits the box.
  const fitX = direction.x === 0 ? Infinity : (box.x1 - box.x0) / Math.abs(direction.x);
  const fitY = direction.y === 0 ? Infinity : (box.y1 - box.y0) / Math.abs(direction.y);
  const longest = Math.min(fitX, fitY);
  const travel = longest <= minTravel ? longest : rng.range(minTravel, longest);
  const dx = travel * direction.x;
  const dy = travel * direction.y;
  const start = {
    x: rng.range(box.x0 - Math.min(0, dx), box.x1 - Math.max(0, dx)),
    y: rng.range(box.y0 - Math.min(0, dy), box.y1 - Math.max(0, dy)),
  };
  const end = { x: start.x + dx, y: start.y + dy };
  const bend = rng.chance(0.4) ? 0 : rng.range(-0.25, 0.25) * travel;
  const control = {
    x: Math.min(box.x1, Math.max(box.x0, (start.x + end.x) / 2 - direction.y * bend)),
    y: Math.min(box.y1, Math.max(box.y0, (start.y + end.y) / 2 + direction.x * bend)),
  };
  return Array.from({ length: frames }, (_, k) => {
    const t = frames === 1 ? 0 : k / (frames - 1);
    const u = 1 - t;
    return {
      x: u * u * start.x + 2 * u * t * control.x + t * t * end.x,
      y: u * u * start.y + 2 * u * t * control.y + t * t * end.y,
    };
  });
}

/** A one-frame scene: 1–6 objects, in half of the scenes with 2–4 of one colour and shape (for counting). */
export function makeImageScene(seed: number, index: number, opts: ImageSceneOptions = {}): Scene {
  const layout = frameLayout(opts.width ?? DEFAULT_SIDE, opts.height ?? DEFAULT_SIDE);
  const rng = sceneRng(seed, `image/${index}`);
  const background = makeBackground(rng, layout);
  const count = rng.int(1, 6);
  const groupSize = count >= 2 && rng.chance(0.5) ? rng.int(2, Math.min(4, count)) : 0;
  const groupTarget = rng.pick(ALL_TARGETS);
  const objects: SceneObject[] = [];
  for (let i = 0; i < count; i++) {
    const target = i < groupSize ? groupTarget : rng.pick(ALL_TARGETS);
    place(objects, () => {
      const size = rng.range(layout.minSize, layout.maxSize);
      return { ...target, size, path: staticPath(rng, layout, size, 1) };
    });
  }
  return { kind: 'image', width: layout.width, height: layout.height, frames: 1, background, objects };
}

/**
 * A clip: 1–4 objects on one background. Object 1 moves across at least 40% of the frame's shorter
 * side and no other object has its colour and shape, so it can always be tracked; the others are
 * static or move less far.
 */
export function makeClipScene(seed: number, index: number, opts: ClipSceneOptions = {}): Scene {
  const layout = frameLayout(opts.width ?? DEFAULT_SIDE, opts.height ?? DEFAULT_SIDE);
  const frames = opts.frames ?? 6;
  const fps = opts.fps ?? 2;
  if (!(Number.isInteger(frames) && frames >= 1)) throw new RangeError(`a clip needs a whole number of frames ≥ 1 (got ${frames})`);
  if (!(fps > 0 && Number.isFinite(fps))) throw new RangeError(`a clip needs fps > 0 (got ${fps})`);
  const rng = sceneRng(seed, `clip/${index}`);
  const background = makeBackground(rng, layout);
  const shortSide = Math.min(layout.width, layout.height);
  const count = rng.int(1, 4);
  const tracked = rng.pick(ALL_TARGETS);
  const others = ALL_TARGETS.filter((t) => !sameTarget(t, tracked));
  const objects: SceneObject[] = [];
  for (let i = 0; i < count; i++) {
    const target = i === 0 ? tracked : rng.pick(others);
    const moves = i === 0 || rng.chance(0.4);
    place(objects, () => {
      const size = rng.range(layout.minSize, layout.maxSize);
      const path = moves ? movingPath(rng, layout, size, frames, (i === 0 ? 0.4 : 0.2) * shortSide) : staticPath(rng, layout, size, frames);
      return { ...target, size, path };
    });
  }
  return { kind: 'clip', width: layout.width, height: layout.height, frames, fps, background, objects };
}

/** An object's centre on a frame; for the triangle, its centroid. */
export function objectCentre(obj: SceneObject, frame: number): ScenePoint {
  const p = obj.path[frame];
  if (!p) throw new RangeError(`object ${obj.id} has no frame ${frame} (it has ${obj.path.length})`);
  return { x: p.x, y: p.y };
}

/** Seconds from the clip's start at which frame k is shown (0 for images). */
export function frameTimeS(scene: Scene, frame: number): number {
  return scene.fps === undefined ? 0 : frame / scene.fps;
}

// ---------------------------------------------------------------------------------------------
// Rendering

const SQRT3_2 = Math.sqrt(3) / 2;
const SQRT1_2 = Math.sqrt(0.5);

/**
 * Whether the point (dx, dy) from the centre lies in the shape of circumradius r. The triangle is
 * equilateral, pointing up, centroid at the centre: each edge lies r/2 from it.
 */
function covers(shape: Shape, r: number, dx: number, dy: number): boolean {
  if (shape === 'circle') return dx * dx + dy * dy <= r * r;
  if (shape === 'square') {
    const half = r * SQRT1_2;
    return dx <= half && dx >= -half && dy <= half && dy >= -half;
  }
  const inradius = r / 2;
  return dy <= inradius && SQRT3_2 * dx - dy / 2 <= inradius && -SQRT3_2 * dx - dy / 2 <= inradius;
}

/** The four sample offsets of 2× supersampling inside a pixel. */
const SAMPLES = [0.25, 0.75] as const;

/** RGB bytes, row-major, width × height × 3, of one frame. */
export function renderFrame(scene: Scene, frame: number): Uint8Array {
  if (!(Number.isInteger(frame) && frame >= 0 && frame < scene.frames)) {
    throw new RangeError(`the scene has frames 0–${scene.frames - 1}, not ${frame}`);
  }
  const rgb = new Uint8Array(scene.width * scene.height * 3);
  paintBackground(rgb, scene.width, scene.height, scene.background);
  for (const obj of scene.objects) paintObject(rgb, scene.width, scene.height, obj, objectCentre(obj, frame));
  return rgb;
}

/** Only the object's bounding box is visited; edge pixels get the share of the 4 samples it covers. */
function paintObject(rgb: Uint8Array, width: number, height: number, obj: SceneObject, centre: ScenePoint) {
  const colour = COLOUR_RGB[obj.colour];
  const x0 = Math.max(0, Math.floor(centre.x - obj.size));
  const x1 = Math.min(width - 1, Math.ceil(centre.x + obj.size));
  const y0 = Math.max(0, Math.floor(centre.y - obj.size));
  const y1 = Math.min(height - 1, Math.ceil(centre.y + obj.size));
  for (let py = y0; py <= y1; py++) {
    for (let px = x0; px <= x1; px++) {
      let hits = 0;
      for (const sy of SAMPLES) {
        for (const sx of SAMPLES) if (covers(obj.shape, obj.size, px + sx - centre.x, py + sy - centre.y)) hits++;
      }
      if (hits === 0) continue;
      const at = (py * width + px) * 3;
      const coverage = hits / 4;
      for (let ch = 0; ch < 3; ch++) rgb[at + ch] = Math.round(rgb[at + ch] + (colour[ch] - rgb[at + ch]) * coverage);
    }
  }
}

const mix = (a: RGB, b: RGB, t: number, out: Uint8Array, at: number) => {
  for (let ch = 0; ch < 3; ch++) out[at + ch] = clampByte(a[ch] + (b[ch] - a[ch]) * t);
};

/** A lattice value in [0, 1) for value noise: an integer hash of (seed, i, j). */
function latticeValue(seed: number, i: number, j: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i, 0xc2b2ae35) ^ Math.imul(j, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
  return ((h ^ (h >>> 15)) >>> 0) / 4294967296;
}

/** Smooth value noise in [0, 1) at (x, y): one octave of cells of size `cell`, bilinear with smoothstep. */
function valueNoise(seed: number, cell: number, x: number, y: number): number {
  const gx = x / cell;
  const gy = y / cell;
  const i = Math.floor(gx);
  const j = Math.floor(gy);
  const tx = smoothstep(gx - i);
  const ty = smoothstep(gy - j);
  const v00 = latticeValue(seed, i, j);
  const v10 = latticeValue(seed, i + 1, j);
  const v01 = latticeValue(seed, i, j + 1);
  const v11 = latticeValue(seed, i + 1, j + 1);
  const top = v00 + (v10 - v00) * tx;
  const bottom = v01 + (v11 - v01) * tx;
  return top + (bottom - top) * ty;
}

/** The background at every pixel centre, computed once per frame. */
function paintBackground(rgb: Uint8Array, width: number, height: number, bg: BackgroundSpec) {
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      const at = (py * width + px) * 3;
      const x = px + 0.5;
      const y = py + 0.5;
      if (bg.kind === 'noise') {
        // Two octaves, the finer one half as strong; the same offset on every channel keeps the tint.
        const n = (valueNoise(bg.seed, bg.cell, x, y) * 2 + valueNoise(bg.seed + 1, bg.cell / 2, x, y)) / 3;
        const offset = (n * 2 - 1) * bg.contrast;
        for (let ch = 0; ch < 3; ch++) rgb[at + ch] = clampByte(bg.base[ch] + offset);
      } else if (bg.kind === 'checker') {
        const odd = (Math.floor(x / bg.cell) + Math.floor(y / bg.cell)) & 1;
        const c = bg.colours[odd];
        rgb[at] = c[0];
        rgb[at + 1] = c[1];
        rgb[at + 2] = c[2];
      } else {
        // A triangle wave across the stripes, softened so stripe edges are not aliased.
        const t = (x * bg.direction.x + y * bg.direction.y) / bg.period;
        const wave = Math.abs(2 * (t - Math.floor(t)) - 1);
        const soft = smoothstep(Math.min(1, Math.max(0, (wave - 0.3) / 0.4)));
        mix(bg.colours[0], bg.colours[1], soft, rgb, at);
      }
    }
  }
}
