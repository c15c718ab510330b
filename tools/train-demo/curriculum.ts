// Which scene and question the demo model sees at each training step, and which scenes it never sees.
// Every split is its own scene seed, so held-out scenes (the trainer's evaluation, the tests, the
// benchmark, the app's sample) are new to the model.
import { makeClipScene, makeImageScene, type Scene } from '../../src/demo/scenes.ts';
import { countQA, pointQA, sceneQuestions, type SceneQA } from '../../src/demo/scene-answers.ts';
import { buildSample, type SampleContext } from './samples.ts';

export interface Split {
  name: string;
  seed: number;
}

export const DEMO_SPLITS = {
  train: { name: 'train', seed: 1 },
  heldOut: { name: 'held-out', seed: 2 },
  check: { name: 'check', seed: 3 },
  test: { name: 'test', seed: 4 },
} as const satisfies Record<string, Split>;

/** Seven image scenes in ten, the rest short clips. */
export const isClipIndex = (i: number): boolean => i % 10 >= 7;

export function sceneAt(split: Split, i: number): Scene {
  return isClipIndex(i) ? makeClipScene(split.seed, i) : makeImageScene(split.seed, i);
}

/** The i-th scene of a split and every question asked about it (one training step). */
export function scenesQuestions(split: Split, i: number): [Scene, SceneQA[]] {
  const scene = sceneAt(split, i);
  const questions = sceneQuestions(scene, split.seed, i);
  if (!questions.length) throw new Error(`${split.name} scene ${i} has no question`);
  return [scene, questions];
}

/**
 * The pointing drill: the i-th image scene of a split (never a clip) with every colour and shape in it
 * asked as Point, and the most numerous one also as Count. It gives the most coordinates per ViT pass;
 * the trainer starts with it (--drill-steps) because finding the shapes is what a model this small
 * learns last, and clips (a 6-frame ViT pass, ~15× an image's) are better spent once it can.
 */
export function drillQuestions(split: Split, i: number): [Scene, SceneQA[]] {
  const scene = makeImageScene(split.seed, i);
  const targets = new Map<string, { colour: Scene['objects'][number]['colour']; shape: Scene['objects'][number]['shape']; n: number }>();
  for (const { colour, shape } of scene.objects) {
    const key = `${colour} ${shape}`;
    const seen = targets.get(key);
    if (seen) seen.n++;
    else targets.set(key, { colour, shape, n: 1 });
  }
  const all = [...targets.values()];
  const qas = all.map((t) => pointQA(scene, t));
  const most = all.reduce((a, b) => (b.n > a.n ? b : a));
  qas.push(countQA(scene, most));
  return [scene, qas];
}

/**
 * The first lesson: image scenes with a single shape (about one in six), asked Point and Count. With
 * one shape the answer's coordinates only need the picture's one salient thing, not the question's
 * colour and shape too: a model that ignores the picture (predicting the same point for every scene,
 * as the drill alone left it after 1000 steps) has a one-step path out. Returns the scene and the
 * index to search from next.
 */
export function singleShapeQuestions(split: Split, from: number, opts: { plain?: boolean } = {}): [Scene, SceneQA[], number] {
  for (let i = from; ; i++) {
    let scene = makeImageScene(split.seed, i);
    if (scene.objects.length !== 1) continue;
    if (opts.plain) scene = { ...scene, background: plainBackground(scene.background) };
    return [scene, [pointQA(scene, scene.objects[0]), countQA(scene, scene.objects[0])], i + 1];
  }
}

/** The same background without its texture (a noise of contrast 0): the easiest lesson's. */
function plainBackground(b: Scene['background']): Scene['background'] {
  const base = b.kind === 'noise' ? b.base : b.colours[0];
  return { kind: 'noise', base, contrast: 0, cell: 32, seed: 0 };
}

/** The i-th (scene, question) of a split, one question per scene: for held-out sets and checks. */
export function sampleAt(split: Split, i: number): [Scene, SceneQA] {
  const [scene, questions] = scenesQuestions(split, i);
  return [scene, questions[Math.floor(i / 10) % questions.length]];
}

/**
 * Token ids the demo's prompts and answers use (questions about the first 4000 training scenes, and the template and image
 * tokens of one image and one video prompt): the embedding and lm_head rows that train.
 */
export function trainingVocabulary(ctx: SampleContext, samples = 4000): number[] {
  const ids = new Set<number>([ctx.config.tokens.eos]);
  for (let i = 0; i < samples; i++) {
    for (const qa of scenesQuestions(DEMO_SPLITS.train, i)[1]) {
      for (const id of ctx.tokenizer.encode(qa.question)) ids.add(id);
      for (const id of ctx.tokenizer.encode(qa.answer)) ids.add(id);
    }
  }
  for (const i of [0, 7]) {
    const [scene, qa] = sampleAt(DEMO_SPLITS.train, i);
    for (const id of buildSample(ctx, scene, qa).inputIds) ids.add(id);
  }
  return [...ids].sort((a, b) => a - b);
}
