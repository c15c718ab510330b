import { describe, expect, it } from 'vitest';
import { parseAnswer, type FrameSize, type ParsedPoint } from '../molmo2/answer.ts';
import {
  NONE_ANSWER,
  coordText,
  countQA,
  describeQA,
  directionText,
  groundTruth,
  pointQA,
  sceneQuestions,
  timestampText,
  trackQA,
  type SceneQA,
  type TruthPoint,
} from './scene-answers.ts';
import { labelOf, makeClipScene, makeImageScene, type Scene } from './scenes.ts';

const IMAGE_SCENES = Array.from({ length: 200 }, (_, i) => makeImageScene(21, i));
const CLIP_SCENES = Array.from({ length: 80 }, (_, i) => makeClipScene(21, i));

/** A hand-made image scene, 400 × 200, on stripes. */
function handImage(): Scene {
  const object = (id: number, colour: 'red' | 'blue', shape: 'circle' | 'triangle', x: number, y: number) => ({ id, colour, shape, size: 20, path: [{ x, y }] });
  return {
    kind: 'image',
    width: 400,
    height: 200,
    frames: 1,
    background: { kind: 'stripes', colours: [[150, 150, 150], [170, 170, 170]], period: 20, direction: { x: 1, y: 0 } },
    objects: [object(1, 'red', 'circle', 300, 150), object(2, 'red', 'circle', 100, 150), object(3, 'blue', 'triangle', 200, 100), object(4, 'red', 'circle', 100, 50)],
  };
}

/** A hand-made clip: a blue square crossing from left to right, a static red circle; 3 frames at 2 fps. */
function handClip(): Scene {
  return {
    kind: 'clip',
    width: 400,
    height: 200,
    frames: 3,
    fps: 2,
    background: { kind: 'checker', colours: [[150, 150, 150], [170, 170, 170]], cell: 20 },
    objects: [
      { id: 1, colour: 'blue', shape: 'square', size: 20, path: [{ x: 40, y: 100 }, { x: 200, y: 100 }, { x: 360, y: 100 }] },
      { id: 2, colour: 'red', shape: 'circle', size: 20, path: [{ x: 200, y: 30 }, { x: 200, y: 30 }, { x: 200, y: 30 }] },
    ],
  };
}

describe('the formatter’s number texts', () => {
  it('writes coordinates as %03d of round(1000 v / extent), 000–1000, exact halves to even like Python', () => {
    expect(coordText(0, 378)).toBe('000');
    expect(coordText(5, 1000)).toBe('005');
    expect(coordText(189, 378)).toBe('500');
    expect(coordText(378, 378)).toBe('1000');
    expect(coordText(37.8, 378)).toBe('100');
    // Python: round(2.5) == 2, round(3.5) == 4.
    expect(coordText(2.5, 1000)).toBe('002');
    expect(coordText(3.5, 1000)).toBe('004');
  });

  it('writes timestamps as str(round(t, 1)) (values checked against CPython 3)', () => {
    const cases: [number, string][] = [
      [0, '0.0'],
      [0.5, '0.5'],
      [12, '12.0'],
      [1 / 3, '0.3'],
      [2 / 3, '0.7'],
      [0.35, '0.3'], // 0.35 is stored just below 0.35
      [0.45, '0.5'], // and 0.45 just above
      [0.25, '0.2'], // exact ties go to the even digit
      [0.75, '0.8'],
      [1.25, '1.2'],
    ];
    for (const [t, text] of cases) expect(timestampText(t)).toBe(text);
  });

  it('names the direction of a move in eight words', () => {
    expect(directionText(100, 0)).toBe('from the left to the right');
    expect(directionText(-100, 10)).toBe('from the right to the left');
    expect(directionText(0, 100)).toBe('from the top to the bottom');
    expect(directionText(20, -100)).toBe('from the bottom to the top');
    expect(directionText(100, 90)).toBe('from the top left to the bottom right');
    expect(directionText(-100, -60)).toBe('from the bottom right to the top left');
  });
});

describe('answers to hand-made scenes', () => {
  const image = handImage();
  const clip = handClip();

  it('points with ids in (x, y) order', () => {
    expect(pointQA(image, { colour: 'red', shape: 'circle' })).toEqual({
      kind: 'point',
      question: 'Point to the red circles.',
      answer: '<points coords="1 1 250 250 2 250 750 3 750 750">red circles</points>',
      target: { colour: 'red', shape: 'circle' },
    });
  });

  it('counts point-then-count, and answers "There are none." for what is absent', () => {
    expect(countQA(image, { colour: 'blue', shape: 'triangle' })).toMatchObject({
      question: 'How many blue triangles are there?',
      answer: 'Counting the <points coords="1 1 500 500">blue triangles</points> shows a total of 1.',
    });
    expect(countQA(image, { colour: 'green', shape: 'square' }).answer).toBe(NONE_ANSWER);
    expect(pointQA(image, { colour: 'blue', shape: 'circle' }).answer).toBe(NONE_ANSWER);
  });

  it('tracks one object, one group per frame at k / fps', () => {
    expect(trackQA(clip, { colour: 'blue', shape: 'square' })).toEqual({
      kind: 'track',
      question: 'Track the blue square.',
      answer: '<tracks coords="0.0 1 100 500;0.5 1 500 500;1.0 1 900 500">blue square</tracks>',
      target: { colour: 'blue', shape: 'square' },
    });
  });

  it('describes images and clips, with the moves of moving objects', () => {
    expect(describeQA(image)).toEqual({
      kind: 'describe',
      question: 'Describe this image.',
      answer: 'The image shows 3 red circles and 1 blue triangle on a striped background.',
    });
    expect(describeQA(clip)).toEqual({
      kind: 'describe',
      question: 'Describe what happens in this video.',
      answer: 'The video shows 1 red circle and 1 blue square on a checkered background. The blue square moves from the left to the right.',
    });
  });

  it('refuses questions the scene cannot answer', () => {
    expect(() => trackQA(image, { colour: 'blue', shape: 'triangle' })).toThrow(/clips/);
    expect(() => trackQA({ ...clip, objects: [...clip.objects, { ...clip.objects[0], id: 3 }] }, { colour: 'blue', shape: 'square' })).toThrow(/exactly one/);
    expect(() => trackQA(clip, { colour: 'green', shape: 'square' })).toThrow(/exactly one/);
    expect(() => pointQA(clip, { colour: 'blue', shape: 'square' })).toThrow(/image/);
  });
});

/** How far a written point may lie from the truth: half a step of the 0–1000 grid. */
const tolerance = (extent: number) => (0.5 * extent) / 1000 + 1e-9;

/** Pairs each parsed point with its nearest truth point, each truth used once, all within rounding. */
function expectMatches(points: ParsedPoint[], truth: TruthPoint[], scene: Scene) {
  expect(points).toHaveLength(truth.length);
  const unused = [...truth];
  for (const p of points) {
    const nearest = unused.reduce((best, t) => (Math.hypot(t.x - p.x, t.y - p.y) < Math.hypot(best.x - p.x, best.y - p.y) ? t : best));
    expect(Math.abs(nearest.x - p.x)).toBeLessThanOrEqual(tolerance(scene.width));
    expect(Math.abs(nearest.y - p.y)).toBeLessThanOrEqual(tolerance(scene.height));
    unused.splice(unused.indexOf(nearest), 1);
  }
}

/** The written coordinates of a tag, in order: [id, x, y] per point. */
const writtenTriples = (answer: string) => [...answer.matchAll(/(\d+) (\d{3,4}) (\d{3,4})/g)].map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);

function checkImageQA(qa: SceneQA, scene: Scene) {
  const frames: FrameSize[] = [{ width: scene.width, height: scene.height }];
  const parsed = parseAnswer(qa.answer, frames);
  expect(parsed.warnings).toEqual([]);
  if (qa.kind === 'describe') {
    expect(qa.question).toBe('Describe this image.');
    expect(parsed.points).toEqual([]);
    expect(parsed.count).toBeUndefined();
    return;
  }
  const target = qa.target!;
  const truth = groundTruth(scene, target);
  const plural = labelOf(target.colour, target.shape, true);
  expect(qa.question).toBe(qa.kind === 'point' ? `Point to the ${plural}.` : `How many ${plural} are there?`);
  if (truth.length === 0) {
    expect(qa.answer).toBe(NONE_ANSWER);
    expect(parsed.points).toEqual([]);
    expect(parsed.count).toBe(0);
    return;
  }
  expectMatches(parsed.points, truth, scene);
  expect(parsed.points.map((p) => p.id)).toEqual(truth.map((_, i) => i + 1));
  for (const p of parsed.points) expect(p).toMatchObject({ kind: 'image', image: 1, label: plural, tag: 'points' });
  // "sort_order xy": the written points ascend by x, then y.
  const triples = writtenTriples(qa.answer);
  for (let i = 1; i < triples.length; i++) {
    const [, x0, y0] = triples[i - 1];
    const [, x1, y1] = triples[i];
    expect(x1 > x0 || (x1 === x0 && y1 >= y0)).toBe(true);
  }
  if (qa.kind === 'count') {
    expect(qa.answer).toMatch(/^Counting the <points coords="[^"]+">[a-z ]+<\/points> shows a total of \d+\.$/);
    expect(parsed.count).toBe(parsed.points.length);
  } else {
    expect(parsed.count).toBeUndefined();
  }
}

function checkClipQA(qa: SceneQA, scene: Scene) {
  const fps = scene.fps!;
  const parsed = parseAnswer(qa.answer, [{ width: scene.width, height: scene.height }], { mode: 'video', fps });
  expect(parsed.warnings).toEqual([]);
  if (qa.kind === 'describe') {
    expect(qa.question).toBe('Describe what happens in this video.');
    expect(parsed.points).toEqual([]);
    expect(parsed.count).toBeUndefined();
    return;
  }
  expect(qa.kind).toBe('track');
  const target = qa.target!;
  const truth = groundTruth(scene, target);
  expect(qa.question).toBe(`Track the ${labelOf(target.colour, target.shape, false)}.`);
  expect(parsed.points).toHaveLength(scene.frames);
  parsed.points.forEach((p, k) => {
    expect(p).toMatchObject({ kind: 'video', id: 1, tag: 'tracks', label: labelOf(target.colour, target.shape, false) });
    if (p.kind !== 'video') return;
    expect(timestampText(p.clipTimeS)).toBe(timestampText(k / fps));
    expect(Math.round(p.clipTimeS * fps)).toBe(k);
    expect(truth[k].frame).toBe(k);
    expect(Math.abs(p.x - truth[k].x)).toBeLessThanOrEqual(tolerance(scene.width));
    expect(Math.abs(p.y - truth[k].y)).toBeLessThanOrEqual(tolerance(scene.height));
  });
}

describe('sceneQuestions', () => {
  it('is deterministic and plain data', () => {
    const scene = makeImageScene(21, 4);
    expect(sceneQuestions(scene, 21, 4)).toEqual(sceneQuestions(makeImageScene(21, 4), 21, 4));
    expect(JSON.parse(JSON.stringify(sceneQuestions(scene, 21, 4)))).toEqual(sceneQuestions(scene, 21, 4));
  });

  it('asks about images what the app’s parser reads back as the ground truth', () => {
    const kinds = new Map<string, number>();
    let none = 0;
    let counted = 0;
    IMAGE_SCENES.forEach((scene, i) => {
      const qas = sceneQuestions(scene, 21, i);
      expect(qas.length).toBeGreaterThan(0);
      for (const qa of qas) {
        checkImageQA(qa, scene);
        kinds.set(qa.kind, (kinds.get(qa.kind) ?? 0) + 1);
        if (qa.answer === NONE_ANSWER) none++;
        if (qa.kind === 'count' && qa.target && groundTruth(scene, qa.target).length >= 2) counted++;
      }
    });
    expect([...kinds.keys()].sort()).toEqual(['count', 'describe', 'point']);
    expect(none).toBeGreaterThan(5);
    expect(counted).toBeGreaterThan(5);
  });

  it('asks about clips: a track of an object that occurs once (the moving one first), sometimes a description', () => {
    let described = 0;
    let tracks = 0;
    CLIP_SCENES.forEach((scene, i) => {
      const qas = sceneQuestions(scene, 21, i);
      const first = qas[0];
      expect(first.kind).toBe('track');
      expect(groundTruth(scene, first.target!)).toHaveLength(scene.frames);
      for (const qa of qas) {
        checkClipQA(qa, scene);
        if (qa.kind === 'describe') described++;
        else tracks++;
      }
      expect(new Set(qas.filter((qa) => qa.kind === 'track').map((qa) => qa.question)).size).toBe(qas.filter((qa) => qa.kind === 'track').length);
    });
    expect(described).toBeGreaterThan(5);
    expect(tracks).toBeGreaterThan(CLIP_SCENES.length);
  });

  it('reads back tracks at other frame rates and frame sizes', () => {
    for (const [fps, frames] of [
      [1, 4],
      [3, 7],
      [4, 8],
    ]) {
      const scene = makeClipScene(8, fps, { width: 320, height: 240, frames, fps });
      checkClipQA(trackQA(scene, scene.objects[0]), scene);
    }
  });

  it('describes each clip’s moving object 1 with a direction', () => {
    for (const scene of CLIP_SCENES.slice(0, 20)) {
      const first = scene.objects[0];
      expect(describeQA(scene).answer).toMatch(new RegExp(`The ${labelOf(first.colour, first.shape, false)} moves from the [a-z ]+ to the [a-z ]+\\.`));
    }
  });
});
