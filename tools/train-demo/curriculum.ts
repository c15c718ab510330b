// Which scene and question the demo model sees at each training step, and which scenes it never sees.
// Every split is its own scene seed, so held-out scenes (the trainer's evaluation, the tests, the
// benchmark, the app's sample) are new to the model.
import { makeClipScene, makeImageScene, type Scene } from '../../src/demo/scenes.ts';
import { sceneQuestions, type SceneQA } from '../../src/demo/scene-answers.ts';
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
