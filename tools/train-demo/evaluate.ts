// The demo model's accuracy on scenes it never saw, scored against the generator's ground truth:
// point hit rate, count accuracy, per-frame track error. Answers come from the project's fp32
// reference (greedy), so this measures the weights, not a runtime. Used by train-demo after training;
// `npx tsx tools/train-demo/evaluate.ts --weights F [--init dir] [--scenes n] [--single-shape]` runs it alone.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ReferenceModel } from '../../src/molmo2/reference/index.ts';
import { MemoryTensors } from '../../src/molmo2/reference/testing.ts';
import { answeredCount, scorePoints, scoreTrack } from '../../src/demo/scoring.ts';
import { applyTrained, readTrainedWeights } from '../lib/demo-checkpoint.ts';
import { readCheckpointFolder, SafetensorsCheckpoint } from '../lib/checkpoint.ts';
import type { Scene } from '../../src/demo/scenes.ts';
import type { SceneQA } from '../../src/demo/scene-answers.ts';
import { DEMO_SPLITS, scenesQuestions, singleShapeQuestions, type Split } from './curriculum.ts';
import { buildSample, loadSampleContext, type SampleContext } from './samples.ts';

export interface DemoAccuracy {
  scenes: number;
  point: { questions: number; truth: number; hits: number; answered: number };
  count: { questions: number; correct: number };
  track: { questions: number; frames: number; found: number; meanErrorPx: number };
  /** Every answer, for reading. */
  answers: { scene: number; question: string; answer: string; expected: string }[];
}

/** The reference model on `init`'s tensors with the trained ones put in. */
export async function trainedReference(ctx: SampleContext, initDir: string, weightsFile: string): Promise<ReferenceModel> {
  const trained = await readTrainedWeights(weightsFile);
  const source = await SafetensorsCheckpoint.open(await readCheckpointFolder(initDir));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const name of source.names()) tensors.set(name, applyTrained(name, { shape: source.shape(name), data: await source.read(name) }, trained));
  await source.close();
  return ReferenceModel.load(ctx.config, new MemoryTensors(tensors));
}

/** Gives a model's answer text to one question about one scene. */
export type Answerer = (scene: Scene, qa: SceneQA) => Promise<string>;

/** The fp32 reference's greedy answer, from the app's own preprocessing and prompt. */
export function referenceAnswerer(model: ReferenceModel, ctx: SampleContext, maxNewTokens = 160): Answerer {
  return async (scene, qa) => {
    const s = buildSample(ctx, scene, qa);
    const prompt = s.inputIds.subarray(0, s.answerStart);
    const features = model.visionFeatures(s.pixelValues, s.numCrops, s.pooledIdx, s.poolSize);
    const r = model.generateGreedy({ inputIds: prompt, imageFeatures: features, tokenTypeIds: s.tokenTypeIds.subarray(0, s.answerStart), maxNewTokens });
    return ctx.tokenizer.decode(r.tokens);
  };
}

/** Every point, count and track question about the first `scenes` scenes of `split`, answered and scored. */
export async function evaluateDemo(
  answerOf: Answerer,
  split: Split,
  scenes: number,
  log: (m: string) => void = () => {},
  questionsAt: (split: Split, i: number) => [Scene, SceneQA[]] = scenesQuestions,
): Promise<DemoAccuracy> {
  const acc: DemoAccuracy = {
    scenes,
    point: { questions: 0, truth: 0, hits: 0, answered: 0 },
    count: { questions: 0, correct: 0 },
    track: { questions: 0, frames: 0, found: 0, meanErrorPx: 0 },
    answers: [],
  };
  let trackErrorSum = 0;
  for (let i = 0; i < scenes; i++) {
    const [scene, qas] = questionsAt(split, i);
    for (const qa of qas) {
      if (qa.kind === 'describe' || !qa.target) continue;
      const answer = await answerOf(scene, qa);
      acc.answers.push({ scene: i, question: qa.question, answer, expected: qa.answer });
      if (qa.kind === 'track') {
        const t = scoreTrack(scene, qa.target, answer);
        acc.track.questions++;
        acc.track.frames += t.frames;
        for (const e of t.errorsPx) {
          if (e === null) continue;
          acc.track.found++;
          trackErrorSum += e;
        }
      } else {
        const p = scorePoints(scene, qa.target, answer);
        if (qa.kind === 'point') {
          acc.point.questions++;
          acc.point.truth += p.truth;
          acc.point.hits += p.hits;
          acc.point.answered += p.answered;
        } else {
          acc.count.questions++;
          if (answeredCount(p) === p.truth) acc.count.correct++;
        }
      }
      log(`${qa.question} → ${answer}${answer === qa.answer ? '' : `   (expected ${qa.answer})`}`);
    }
  }
  acc.track.meanErrorPx = acc.track.found ? trackErrorSum / acc.track.found : NaN;
  return acc;
}

export function accuracySummary(a: DemoAccuracy): string {
  const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(0)}%` : 'n/a');
  return [
    `point: ${a.point.hits}/${a.point.truth} centres hit (${pct(a.point.hits, a.point.truth)}), ${a.point.answered} points answered, ${a.point.questions} questions`,
    `count: ${a.count.correct}/${a.count.questions} right (${pct(a.count.correct, a.count.questions)})`,
    `track: ${a.track.found}/${a.track.frames} frames answered, mean error ${a.track.meanErrorPx.toFixed(1)} px, ${a.track.questions} questions`,
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: { weights: { type: 'string' }, init: { type: 'string', default: '.cache/train-demo/init' }, scenes: { type: 'string', default: '20' }, verbose: { type: 'boolean' }, 'single-shape': { type: 'boolean' } },
  });
  if (!values.weights) throw new Error('--weights is required');
  const ctx = await loadSampleContext(values.init!);
  const model = await trainedReference(ctx, values.init!, values.weights);
  // --single-shape: the first lesson's questions (Point and Count on one-shape test scenes), to score a run that is still in it.
  let from = 0;
  const singleShape = (split: Split): [Scene, SceneQA[]] => {
    const [scene, qas, next] = singleShapeQuestions(split, from);
    from = next;
    return [scene, qas];
  };
  const acc = await evaluateDemo(referenceAnswerer(model, ctx), DEMO_SPLITS.test, Number(values.scenes), values.verbose ? (m) => console.log(m) : undefined, values['single-shape'] ? singleShape : scenesQuestions);
  console.log(accuracySummary(acc));
}
