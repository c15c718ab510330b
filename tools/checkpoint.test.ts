import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedTensors, names } from '../src/molmo2/tensors.ts';
import { parseHeader, toFloat32, writeSafetensors } from '../src/molmo2/safetensors.ts';
import { checkConfig, checkTensors, readCheckpointFolder, SafetensorsCheckpoint } from './lib/checkpoint.ts';
import { makeTinyCheckpoint, type TinyCheckpoint } from './lib/tiny-checkpoint.ts';

let root: string;
let ck: TinyCheckpoint;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ck-reader-'));
  ck = await makeTinyCheckpoint({ outDir: join(root, 'tiny'), seed: 3 });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Reads a tensor by parsing the whole shard in memory: an independent path to compare with. */
async function readWhole(dir: string, shard: string, name: string): Promise<Float32Array> {
  const bytes = new Uint8Array(await readFile(join(dir, shard)));
  const h = parseHeader(bytes);
  const t = h.tensors.get(name)!;
  return toFloat32(bytes.subarray(h.dataStart + t.begin, h.dataStart + t.end), t.dtype);
}

describe('SafetensorsCheckpoint', () => {
  it('reads every tensor of a sharded checkpoint with its shape, matching a whole-file parse', async () => {
    const folder = await readCheckpointFolder(ck.outDir);
    expect(folder.shards.length).toBeGreaterThanOrEqual(2);
    expect(folder.randomWeights).toBe(true);
    const config = checkConfig(folder).config!;
    const reader = await SafetensorsCheckpoint.open(folder);
    try {
      expect(reader.problems).toEqual([]);
      const check = checkTensors(reader.shapes(), expectedTensors(config), config.vitBlocksUsed);
      expect(check.ok).toBe(true);
      for (const name of [names.newEmbedding, `${names.block(2)}.self_attn.att_proj.weight`, `${names.vitBlock(24)}.feed_forward.w1.bias`, names.positionalEmbedding]) {
        const got = await reader.read(name);
        expect(got.length).toBe(reader.shape(name).reduce((a, b) => a * b, 1));
        expect(reader.dtype(name)).toBe('F32');
        const whole = await readWhole(ck.outDir, folder.index!.weight_map[name], name);
        expect(Buffer.from(got.buffer).equals(Buffer.from(whole.buffer))).toBe(true);
      }
      expect(() => reader.shape('nope')).toThrow(/no tensor nope/);
    } finally {
      await reader.close();
    }
  });

  it('converts BF16 and F16 tensors to float32', async () => {
    const dir = join(root, 'half');
    await cp(ck.outDir, dir, { recursive: true, filter: (src) => !src.endsWith('.safetensors') && !src.endsWith('index.json') });
    const values = [1, -2.5, 0.099853515625, 65504, -0.0001220703125, 3.140625];
    const f16 = new Uint16Array([0x3c00, 0xc100, 0x2e64, 0x7bff, 0x8800, 0x4248]);
    const bf16 = new Uint16Array(values.map((v) => new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16));
    await writeFile(
      join(dir, 'model.safetensors'),
      writeSafetensors([
        { name: 'a', dtype: 'F16', shape: [2, 3], data: new Uint8Array(f16.buffer) },
        { name: 'b', dtype: 'BF16', shape: [6], data: new Uint8Array(bf16.buffer) },
      ]),
    );
    const reader = await SafetensorsCheckpoint.open(await readCheckpointFolder(dir));
    try {
      expect(Array.from(await reader.read('a'))).toEqual(values);
      expect(reader.dtype('b')).toBe('BF16');
      const b = await reader.read('b');
      values.forEach((v, i) => expect(Math.abs(b[i] - v)).toBeLessThanOrEqual(Math.abs(v) / 128));
    } finally {
      await reader.close();
    }
  });

  it('reports a truncated shard by name before reading anything', async () => {
    const dir = join(root, 'cut');
    await cp(ck.outDir, dir, { recursive: true });
    const folder = await readCheckpointFolder(dir);
    const shard = folder.shards[1];
    await truncate(join(dir, shard), 100_000);
    const reader = await SafetensorsCheckpoint.open(folder);
    try {
      expect(reader.problems.length).toBeGreaterThan(0);
      expect(reader.problems[0].message).toMatch(new RegExp(`${shard} is truncated: it has 100000 bytes`));
      const config = checkConfig(folder).config!;
      expect(checkTensors(reader.shapes(), expectedTensors(config), config.vitBlocksUsed).missing.length).toBeGreaterThan(0);
      // Tensors of the intact shard remain readable.
      const intact = Object.entries(folder.index!.weight_map).find(([, f]) => f === folder.shards[0])![0];
      expect((await reader.read(intact)).length).toBeGreaterThan(0);
    } finally {
      await reader.close();
    }
    await truncate(join(dir, shard), 5);
    const again = await SafetensorsCheckpoint.open(folder);
    expect(again.problems[0].message).toMatch(new RegExp(`${shard} is truncated: it has 5 bytes, shorter than the 8-byte header length`));
    await again.close();
  });

  it('lists missing shards', async () => {
    const dir = join(root, 'partial');
    await cp(ck.outDir, dir, { recursive: true, filter: (src) => !src.endsWith('model-00002-of-00002.safetensors') });
    const folder = await readCheckpointFolder(dir);
    expect(folder.missingShards).toEqual(['model-00002-of-00002.safetensors']);
    await expect(SafetensorsCheckpoint.open(folder)).rejects.toThrow(/missing weight files: model-00002-of-00002.safetensors/);
  });
});

describe('checkTensors', () => {
  it('finds missing, mis-shaped and unknown tensors and skips documented extras', () => {
    const expected = expectedTensors(ck.config);
    const actual = new Map(expected);
    actual.delete(names.finalNorm);
    actual.set(names.lmHead, [151936, 41]);
    actual.set('model.vision_backbone.image_vit.transformer.resblocks.25.attention.wq.weight', [32, 32]);
    actual.set('model.transformer.blocks.0.self_attn.rotary_emb.inv_freq', [6]);
    actual.set('model.point_head.weight', [2, 2]);
    const check = checkTensors(actual, expected, ck.config.vitBlocksUsed);
    expect(check.ok).toBe(false);
    expect(check.missing).toEqual([names.finalNorm]);
    expect(check.wrongShape).toEqual([{ name: names.lmHead, expected: [151936, 40], actual: [151936, 41] }]);
    expect(check.unexpected).toEqual(['model.point_head.weight']);
    expect(check.ignored.sort()).toEqual(['model.transformer.blocks.0.self_attn.rotary_emb.inv_freq', 'model.vision_backbone.image_vit.transformer.resblocks.25.attention.wq.weight']);
  });
});
