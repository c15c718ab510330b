// Questions about a scene and their answers, written exactly as Molmo2 writes them (the "html-v2"
// point formatter, /work/shared/spec/molmo2.md §14, docs/molmo2-answers.md), so the demo model learns
// the grammar the app's parser (src/molmo2/answer.ts) reads. Platform-free.

import {
  COLOURS,
  SHAPES,
  frameTimeS,
  labelOf,
  objectCentre,
  sceneRng,
  type Scene,
  type SceneObject,
  type SceneRng,
  type SceneTarget,
} from './scenes.ts';

export interface SceneQA {
  kind: 'point' | 'count' | 'track' | 'describe';
  question: string;
  answer: string;
  /** The colour and shape asked about (not for describe). */
  target?: SceneTarget;
}

/** A target's centre on one frame, in pixels. */
export interface TruthPoint {
  frame: number;
  x: number;
  y: number;
}

/** Molmo2's answer when nothing matches. */
export const NONE_ANSWER = 'There are none.';

const matches = (obj: SceneObject, target: SceneTarget) => obj.colour === target.colour && obj.shape === target.shape;
/** Just the colour and shape, so passing a whole SceneObject as the target keeps a QA small. */
const targetOf = (t: SceneTarget): SceneTarget => ({ colour: t.colour, shape: t.shape });

/** Centres of every object of the target's colour and shape, by frame, then x, then y. */
export function groundTruth(scene: Scene, target: SceneTarget): TruthPoint[] {
  const points: TruthPoint[] = [];
  for (let frame = 0; frame < scene.frames; frame++) {
    const onFrame = scene.objects.filter((obj) => matches(obj, target)).map((obj) => ({ frame, ...objectCentre(obj, frame) }));
    points.push(...onFrame.sort((a, b) => a.x - b.x || a.y - b.y));
  }
  return points;
}

/** Python's round(): exact halves go to the even neighbour (the formatter is Python). */
function roundHalfEven(v: number): number {
  const floor = Math.floor(v);
  const rest = v - floor;
  if (rest !== 0.5) return Math.round(v);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** A coordinate as Molmo2 writes it: "%03d" % round(1000 * v / extent), on 0–1000. */
export function coordText(v: number, extent: number): string {
  const scaled = Math.min(1000, Math.max(0, roundHalfEven((1000 * v) / extent)));
  return String(scaled).padStart(3, '0');
}

/**
 * A timestamp as Molmo2 writes it: str(round(t, 1)), always one decimal ("0.0", "0.5", "12.0").
 * toFixed rounds the exact binary value like Python does, except on exact ties (t = odd/4 s), where
 * Python goes to the even digit.
 */
export function timestampText(t: number): string {
  const tenths = t * 10;
  const isTie = Number.isInteger(t * 4) && !Number.isInteger(t * 2);
  if (!isTie) return t.toFixed(1);
  const floor = Math.floor(tenths);
  return ((floor % 2 === 0 ? floor : floor + 1) / 10).toFixed(1);
}

/** `<points coords="1 1 x y 2 x y">label</points>` for one image; ids 1..n in (x, y) order of the written values. */
function pointsTag(scene: Scene, centres: { x: number; y: number }[], label: string): string {
  const written = centres
    .map((c) => ({ x: coordText(c.x, scene.width), y: coordText(c.y, scene.height) }))
    .sort((a, b) => Number(a.x) - Number(b.x) || Number(a.y) - Number(b.y));
  const triples = written.map((p, i) => `${i + 1} ${p.x} ${p.y}`).join(' ');
  return `<points coords="1 ${triples}">${label}</points>`;
}

function requireImage(scene: Scene, what: string) {
  if (scene.kind !== 'image') throw new Error(`${what} questions are asked about image scenes, not clips`);
}

/** "Point to the red circles." — the app's Point preset. */
export function pointQA(scene: Scene, target: SceneTarget): SceneQA {
  requireImage(scene, 'point');
  const label = labelOf(target.colour, target.shape, true);
  const centres = groundTruth(scene, target);
  const answer = centres.length === 0 ? NONE_ANSWER : pointsTag(scene, centres, label);
  return { kind: 'point', question: `Point to the ${label}.`, answer, target: targetOf(target) };
}

/** "How many red circles are there?" — answered point-then-count, as Molmo2 does. */
export function countQA(scene: Scene, target: SceneTarget): SceneQA {
  requireImage(scene, 'count');
  const label = labelOf(target.colour, target.shape, true);
  const centres = groundTruth(scene, target);
  const answer = centres.length === 0 ? NONE_ANSWER : `Counting the ${pointsTag(scene, centres, label)} shows a total of ${centres.length}.`;
  return { kind: 'count', question: `How many ${label} are there?`, answer, target: targetOf(target) };
}

/** "Track the red circle." — for a colour and shape that occurs exactly once; one group per frame. */
export function trackQA(scene: Scene, target: SceneTarget): SceneQA {
  if (scene.fps === undefined) throw new Error('track questions are asked about clips (scenes with fps)');
  const found = scene.objects.filter((obj) => matches(obj, target));
  const label = labelOf(target.colour, target.shape, false);
  if (found.length !== 1) throw new Error(`a track question needs exactly one ${label}; the scene has ${found.length}`);
  const groups = found[0].path.map((_, frame) => {
    const c = objectCentre(found[0], frame);
    return `${timestampText(frameTimeS(scene, frame))} 1 ${coordText(c.x, scene.width)} ${coordText(c.y, scene.height)}`;
  });
  return { kind: 'track', question: `Track the ${label}.`, answer: `<tracks coords="${groups.join(';')}">${label}</tracks>`, target: targetOf(target) };
}

const BACKGROUND_WORDS = { noise: 'mottled', stripes: 'striped', checker: 'checkered' } as const;

/** "a, b and c" */
function listText(items: string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * The direction of a net move in words, one of eight: a move counts as diagonal when its smaller
 * component is at least tan(22.5°) ≈ 0.414 of its larger one.
 */
export function directionText(dx: number, dy: number): string {
  const horizontal = Math.abs(dx) >= 0.414 * Math.abs(dy);
  const vertical = Math.abs(dy) >= 0.414 * Math.abs(dx);
  const from = [vertical ? (dy > 0 ? 'top' : 'bottom') : '', horizontal ? (dx > 0 ? 'left' : 'right') : ''].filter(Boolean).join(' ');
  const to = [vertical ? (dy > 0 ? 'bottom' : 'top') : '', horizontal ? (dx > 0 ? 'right' : 'left') : ''].filter(Boolean).join(' ');
  return `from the ${from} to the ${to}`;
}

/**
 * A short caption: the objects by colour and shape (in the tables' order) and the background; for a
 * clip, one sentence per object whose net move is at least 5% of the shorter side. It avoids
 * "There are N", which the app's parser would read as a count.
 */
export function describeQA(scene: Scene): SceneQA {
  const video = scene.kind === 'clip';
  const groups: string[] = [];
  for (const colour of COLOURS) {
    for (const shape of SHAPES) {
      const n = scene.objects.filter((obj) => matches(obj, { colour, shape })).length;
      if (n > 0) groups.push(`${n} ${labelOf(colour, shape, n !== 1)}`);
    }
  }
  const contents = groups.length === 0 ? 'nothing' : listText(groups);
  let answer = `The ${video ? 'video' : 'image'} shows ${contents} on a ${BACKGROUND_WORDS[scene.background.kind]} background.`;
  if (video) {
    const minMove = 0.05 * Math.min(scene.width, scene.height);
    for (const obj of scene.objects) {
      const first = objectCentre(obj, 0);
      const last = objectCentre(obj, scene.frames - 1);
      const dx = last.x - first.x;
      const dy = last.y - first.y;
      if (dx * dx + dy * dy < minMove * minMove) continue;
      const unique = scene.objects.filter((other) => matches(other, obj)).length === 1;
      answer += ` ${unique ? 'The' : 'A'} ${labelOf(obj.colour, obj.shape, false)} moves ${directionText(dx, dy)}.`;
    }
  }
  return { kind: 'describe', question: video ? 'Describe what happens in this video.' : 'Describe this image.', answer };
}

/** The colours and shapes present, in the tables' order. */
function presentTargets(scene: Scene): SceneTarget[] {
  return COLOURS.flatMap((colour) => SHAPES.map((shape) => ({ colour, shape }))).filter((t) => scene.objects.some((obj) => matches(obj, t)));
}

/**
 * A deterministic mix of questions for scene `index` of `seed`. Images: point or count questions about
 * 1–3 colours and shapes present, sometimes one absent ("There are none."), sometimes a description.
 * Clips: a track of a colour and shape that occurs once (a moving one when there is one), sometimes a
 * second track, sometimes a description.
 */
export function sceneQuestions(scene: Scene, seed: number, index: number): SceneQA[] {
  const rng = sceneRng(seed, `questions/${index}`);
  const all = COLOURS.flatMap((colour) => SHAPES.map((shape) => ({ colour, shape })));
  const present = presentTargets(scene);
  const qas: SceneQA[] = [];
  if (scene.kind === 'image' && present.length > 0) {
    const asked = shuffled(present, rng).slice(0, rng.int(1, Math.min(3, present.length)));
    for (const target of asked) qas.push(rng.chance(0.5) ? pointQA(scene, target) : countQA(scene, target));
    const absent = all.filter((t) => !present.some((p) => p.colour === t.colour && p.shape === t.shape));
    if (absent.length > 0 && rng.chance(0.25)) {
      const target = rng.pick(absent);
      qas.push(rng.chance(0.5) ? pointQA(scene, target) : countQA(scene, target));
    }
  } else if (scene.kind === 'clip') {
    const once = present.filter((t) => scene.objects.filter((obj) => matches(obj, t)).length === 1);
    const moving = once.filter((t) => scene.objects.some((obj) => matches(obj, t) && obj.path.some((p) => p.x !== obj.path[0].x || p.y !== obj.path[0].y)));
    const order = [...shuffled(moving, rng), ...shuffled(once.filter((t) => !moving.includes(t)), rng)];
    if (order.length > 0) qas.push(trackQA(scene, order[0]));
    if (order.length > 1 && rng.chance(0.3)) qas.push(trackQA(scene, order[1]));
  }
  if (qas.length === 0 || rng.chance(0.25)) qas.push(describeQA(scene));
  return qas;
}

/** A Fisher–Yates shuffle of a copy. */
function shuffled<T>(items: readonly T[], rng: SceneRng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
