import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { float16Value, float16Bits } from '../../src/molmo2/fp16.ts';
import { names } from '../../src/molmo2/tensors.ts';
import { readCheckpointFolder, SafetensorsCheckpoint } from './checkpoint.ts';
import { applyTrained, readTrainedWeights, writeDemoCheckpoint, writeTrainedWeightsF16, type TrainedWeights } from './demo-checkpoint.ts';
import { makeTinyCheckpoint } from './tiny-checkpoint.ts';

const f16 = (v: number) => float16Value(float16Bits(v));
const tensor = (shape: number[], f: (i: number) => number) => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)) });

describe('applyTrained', () => {
  const d = 3;
  const init = (rows: number) => tensor([rows, d], (i) => 100 + i);
  const trained: TrainedWeights = {
    tensors: new Map([
      ['some.weight', tensor([2, 2], (i) => i / 10)],
      [`${names.embedding}@rows`, tensor([2, d], (i) => -1 - i)],
      [`${names.lmHead}@rows`, tensor([2, d], (i) => -10 - i)],
      [`${names.newEmbedding}@rows`, tensor([1, d], (i) => -20 - i)],
    ]),
    baseRows: [1, 4],
    newRows: [2],
    metadata: {},
  };

  it('takes a trained tensor whole, refusing another shape', () => {
    expect(applyTrained('some.weight', tensor([2, 2], () => 7), trained).data).toEqual(Float32Array.from([0, 0.1, 0.2, 0.3].map(Math.fround)));
    expect(() => applyTrained('some.weight', tensor([4], () => 7), trained)).toThrow(/trained some\.weight is 2×2, the checkpoint's 4/);
    expect(() => applyTrained('other.weight', tensor([4], () => 7), trained)).toThrow(/have no other\.weight/);
  });

  it('puts the trained rows of the embedding in place and keeps the others', () => {
    const out = applyTrained(names.embedding, init(6), trained).data;
    expect([...out.subarray(3, 6)]).toEqual([-1, -2, -3]);
    expect([...out.subarray(12, 15)]).toEqual([-4, -5, -6]);
    expect([...out.subarray(0, 3)]).toEqual([100, 101, 102]);
    expect([...out.subarray(15, 18)]).toEqual([115, 116, 117]);
  });

  it('zeroes every lm_head row it did not train, and places new_embedding rows by their own ids', () => {
    const head = applyTrained(names.lmHead, init(6), trained).data;
    expect([...head.subarray(3, 6)]).toEqual([-10, -11, -12]);
    expect([...head.subarray(0, 3)]).toEqual([0, 0, 0]);
    expect([...head.subarray(15, 18)]).toEqual([0, 0, 0]);
    const added = applyTrained(names.newEmbedding, init(4), trained).data;
    expect([...added.subarray(6, 9)]).toEqual([-20, -21, -22]);
    expect([...added.subarray(0, 3)]).toEqual([100, 101, 102]);
  });

  it('refuses rows past the table', () => {
    expect(() => applyTrained(names.embedding, init(3), trained)).toThrow(/row 4 is past the table's 3 rows/);
  });
});

describe('the demo checkpoint on disk', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'demo-ckpt-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips trained weights through float16 with their row ids, and rebuilds a checkpoint with them in place', async () => {
    // Trained weights made from the demo-size initial checkpoint itself, with two tensors changed.
    const init = join(dir, 'init');
    await makeTinyCheckpoint({ outDir: init, size: 'demo', seed: 3 });
    const source = await SafetensorsCheckpoint.open(await readCheckpointFolder(init));
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const name of source.names()) {
      if ([names.embedding, names.newEmbedding, names.lmHead].includes(name)) continue;
      tensors.set(name, { shape: source.shape(name), data: await source.read(name) });
    }
    const changed = `${names.block(2)}.mlp.ff_out.weight`;
    tensors.get(changed)!.data.fill(0.375);
    const d = source.shape(names.embedding)[1];
    tensors.set(`${names.embedding}@rows`, tensor([2, d], () => 0.5));
    tensors.set(`${names.lmHead}@rows`, tensor([2, d], (i) => i / 1000));
    tensors.set(`${names.newEmbedding}@rows`, tensor([1, d], () => -0.25));
    const embedding = await source.read(names.embedding);
    await source.close();

    const file = join(dir, 'trained.safetensors');
    await writeTrainedWeightsF16(file, { tensors, baseRows: [13, 151000], newRows: [2], metadata: {} }, { init_seed: '3' });
    const back = await readTrainedWeights(file);
    expect(back.baseRows).toEqual([13, 151000]);
    expect(back.newRows).toEqual([2]);
    expect(back.metadata.init_seed).toBe('3');
    expect([...back.tensors.get(`${names.lmHead}@rows`)!.data.subarray(0, 5)]).toEqual([0, 1, 2, 3, 4].map((i) => f16(i / 1000)));

    const out = join(dir, 'demo');
    await writeDemoCheckpoint(out, file);
    const rebuilt = await SafetensorsCheckpoint.open(await readCheckpointFolder(out));
    expect((await rebuilt.read(changed)).every((v) => v === 0.375)).toBe(true);
    const emb = await rebuilt.read(names.embedding);
    expect(emb.subarray(13 * d, 14 * d).every((v) => v === 0.5)).toBe(true);
    expect([...emb.subarray(12 * d, 13 * d)]).toEqual([...embedding.subarray(12 * d, 13 * d)]);
    const head = await rebuilt.read(names.lmHead);
    expect(head.subarray(151000 * d, 151000 * d + 2)).toEqual(Float32Array.from([f16(d / 1000), f16((d + 1) / 1000)]));
    expect(head.subarray(0, 13 * d).every((v) => v === 0)).toBe(true);
    expect((await rebuilt.read(names.newEmbedding)).subarray(2 * d, 3 * d).every((v) => v === -0.25)).toBe(true);
    await rebuilt.close();
    const index = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(index.metadata.random_weights).toBe(false);
    expect(index.metadata.demo_trained).toBe(true);
  });
});
