// `npm run train-demo -- [--steps n] [--seed n] [--out dir] [--resume weights] [--ship]`: trains the demo
// model (a `make-tiny --size demo` checkpoint) to point at, count and track coloured shapes in generated
// scenes (src/demo/), with PyTorch (tools/train-demo/train.py). This process makes the samples with the
// app's own preprocessing, prompt and tokenizer and streams them to the trainer; the trainer first checks
// its forward pass against the project's reference on the initial weights. See tools/train-demo/README.md.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ReferenceModel } from '../src/molmo2/reference/index.ts';
import { readCheckpointFolder, SafetensorsCheckpoint } from './lib/checkpoint.ts';
import { makeTinyCheckpoint } from './lib/tiny-checkpoint.ts';
import { DEMO_ASSETS, DEMO_WEIGHTS_FILE, readTrainedWeights, writeTrainedWeightsF16 } from './lib/demo-checkpoint.ts';
import { accuracySummary, evaluateDemo, referenceAnswerer, trainedReference } from './train-demo/evaluate.ts';
import { buildSample, buildSamples, encodeGroup, encodeSample, loadSampleContext, type SampleContext } from './train-demo/samples.ts';
import { DEMO_SPLITS, drillQuestions, sampleAt, scenesQuestions, singleShapeQuestions, trainingVocabulary } from './train-demo/curriculum.ts';

const HERE = fileURLToPath(new URL('./train-demo/', import.meta.url));
const USAGE = 'usage: npm run train-demo -- [--steps n] [--seed n] [--out dir] [--threads n] [--python path] [--test-scenes n] [--accumulate n] [--single-steps n] [--plain-steps n] [--drill-steps n] [--first-scene n] [--qk-gain x] [--attend-layers 1,2] [--attend-weight x] [--position-probe] [--resume weights] [--ship]';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      steps: { type: 'string', default: '3000' },
      seed: { type: 'string', default: '0' },
      out: { type: 'string', default: '.cache/train-demo' },
      threads: { type: 'string', default: '2' },
      python: { type: 'string', default: '/usr/bin/python3' },
      'held-out': { type: 'string', default: '24' },
      'eval-every': { type: 'string', default: '250' },
      lr: { type: 'string', default: '2e-3' },
      'test-scenes': { type: 'string', default: '30' },
      ship: { type: 'boolean', default: false },
      resume: { type: 'string' },
      accumulate: { type: 'string', default: '1' },
      'single-steps': { type: 'string', default: '0' },
      'plain-steps': { type: 'string', default: '0' },
      'drill-steps': { type: 'string', default: '0' },
      'first-scene': { type: 'string', default: '0' },
      'qk-gain': { type: 'string', default: '1' },
      'attend-layers': { type: 'string', default: '' },
      'attend-weight': { type: 'string', default: '0.5' },
      'position-probe': { type: 'boolean', default: false },
    },
  });
  const steps = Number(values.steps);
  const seed = Number(values.seed);
  const accumulate = Number(values.accumulate);
  const singleSteps = Number(values['single-steps']);
  const plainSteps = Number(values['plain-steps']);
  const drillSteps = Number(values['drill-steps']);
  const firstScene = Number(values['first-scene']);
  if (!Number.isInteger(steps) || steps < 1 || !Number.isInteger(accumulate) || accumulate < 1 || ![seed, singleSteps, plainSteps, drillSteps, firstScene].every((n) => Number.isInteger(n) && n >= 0)) {
    console.error(`--steps and --accumulate must be positive integers, --seed, --single-steps, --plain-steps, --drill-steps and --first-scene non-negative ones\n${USAGE}`);
    return 2;
  }
  const out = values.out!;
  const init = join(out, 'init');
  await mkdir(out, { recursive: true });
  if (!existsSync(join(init, 'model.safetensors.index.json'))) await makeTinyCheckpoint({ outDir: init, size: 'demo', seed });
  const ctx = await loadSampleContext(init);

  const rows = trainingVocabulary(ctx);
  await writeFile(join(out, 'rows.json'), JSON.stringify(rows));
  console.error(`[train-demo] ${rows.length} token rows of the embedding and lm_head train`);

  await writeFile(join(out, 'check.bin'), await referenceCheck(ctx, init));
  const heldOut: Buffer[] = [];
  for (let i = 0; i < Number(values['held-out']); i++) heldOut.push(encodeSample(buildSample(ctx, ...sampleAt(DEMO_SPLITS.heldOut, i)), ctx));
  await writeFile(join(out, 'held-out.bin'), Buffer.concat(heldOut));

  const started = performance.now();
  const trainer = spawn(
    values.python!,
    [
      join(HERE, 'train.py'),
      ...['--init', init, '--check', join(out, 'check.bin'), '--held-out', join(out, 'held-out.bin'), '--rows', join(out, 'rows.json'), '--out', out],
      ...['--steps', String(steps), '--seed', String(seed), '--threads', values.threads!, '--eval-every', values['eval-every']!, '--lr', values.lr!, '--accumulate', String(accumulate), '--qk-gain', values['qk-gain']!, '--attend-layers', values['attend-layers']!, '--attend-weight', values['attend-weight']!, ...(values['position-probe'] ? ['--position-probe'] : [])],
      ...(values.resume ? ['--resume', values.resume] : []),
    ],
    // One BLAS thread: torch's own threads already take the cores; two pools on 2 cores thrash. Passive
    // OpenMP waits: on a busy machine spinning threads wait for descheduled partners and a step takes ×5.
    { stdio: ['pipe', 'inherit', 'inherit'], env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_WAIT_POLICY: 'PASSIVE' } },
  );
  const exited = once(trainer, 'exit');
  trainer.stdin.on('error', () => {}); // the trainer's exit code says what went wrong
  // Lessons in order: single shapes (--single-steps, the first --plain-steps of them on untextured
  // backgrounds), the pointing drill (--drill-steps), then the
  // questions the app asks, clips included. A resumed run passes --first-scene so that it sees new scenes.
  let singleFrom = firstScene;
  // Each optimizer step takes --accumulate scenes.
  for (let n = 0; n < steps * accumulate && trainer.exitCode === null; n++) {
    const step = Math.floor(n / accumulate);
    const i = firstScene + n;
    let scene, qas;
    if (step < singleSteps) [scene, qas, singleFrom] = singleShapeQuestions(DEMO_SPLITS.train, singleFrom, { plain: step < plainSteps });
    else [scene, qas] = step < singleSteps + drillSteps ? drillQuestions(DEMO_SPLITS.train, i) : scenesQuestions(DEMO_SPLITS.train, i);
    if (!trainer.stdin.write(encodeGroup(buildSamples(ctx, scene, qas), ctx))) {
      await Promise.race([once(trainer.stdin, 'drain'), exited]);
    }
  }
  trainer.stdin.end();
  const [code] = (await exited) as [number | null];
  if (code !== 0) {
    console.error(`[train-demo] the trainer exited with ${code}`);
    return 1;
  }
  const minutes = (performance.now() - started) / 60000;
  console.error(`[train-demo] ${steps} steps in ${minutes.toFixed(1)} min`);

  // What ships is float16: it is what gets evaluated.
  const packed = join(out, 'demo-weights.safetensors');
  const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  await writeTrainedWeightsF16(packed, await readTrainedWeights(join(out, 'trained.safetensors')), {
    init_seed: String(seed),
    init_size: 'demo',
    steps: String(steps),
    training_minutes: minutes.toFixed(1),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}`,
    held_out: JSON.stringify(log.at(-1)),
    trainer: 'npm run train-demo (tools/train-demo/train.py, PyTorch)',
  });
  const model = await trainedReference(ctx, init, packed);
  const accuracy = await evaluateDemo(referenceAnswerer(model, ctx), DEMO_SPLITS.test, Number(values['test-scenes']));
  await writeFile(join(out, 'accuracy.json'), `${JSON.stringify(accuracy, null, 2)}\n`);
  console.log(`test scenes (never trained on), fp32 reference, float16 weights:\n${accuracySummary(accuracy)}`);
  if (values.ship) {
    await mkdir(DEMO_ASSETS, { recursive: true });
    await copyFile(packed, DEMO_WEIGHTS_FILE);
    console.error(`[train-demo] shipped: ${DEMO_WEIGHTS_FILE}`);
  } else console.error(`[train-demo] weights in ${packed}; --ship puts them in ${DEMO_WEIGHTS_FILE}`);
  return 0;
}

/**
 * One held-out sample with the reference's logits at the rows that predict its answer: the trainer's
 * PyTorch forward must give the same before it trains, or the weights it learns would mean something
 * else in the app.
 */
async function referenceCheck(ctx: SampleContext, checkpointDir: string): Promise<Buffer> {
  const [scene, qa] = sampleAt(DEMO_SPLITS.check, 0);
  const sample = buildSample(ctx, scene, qa);
  const source = await SafetensorsCheckpoint.open(await readCheckpointFolder(checkpointDir));
  const model = await ReferenceModel.load(ctx.config, source);
  await source.close();
  const features = model.visionFeatures(sample.pixelValues, sample.numCrops, sample.pooledIdx, sample.poolSize);
  const vocab = ctx.config.text.vocabSize;
  const all = model.decoderLogits(sample.inputIds, features, sample.tokenTypeIds);
  const rows = sample.inputIds.length - sample.answerStart;
  const values = all.slice((sample.answerStart - 1) * vocab, (sample.inputIds.length - 1) * vocab);
  return encodeSample(sample, ctx, { extra: { rows, cols: vocab, values } });
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`train-demo: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
