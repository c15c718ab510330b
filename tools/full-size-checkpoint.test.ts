// The full-size random checkpoints (`make-tiny --size 4b|8b`): their config.json and tensor table,
// checked without writing the 10–17 GB of weights.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseMolmo2Config, placeholderPaths } from '../src/molmo2/config.ts';
import { expectedTensors } from '../src/molmo2/tensors.ts';
import { readAssetJson } from './lib/assets.ts';
import { MOLMO2_8B_FILLED, publishedConfigJson } from './lib/published-configs.ts';
import { packIntoShards } from './lib/tiny-checkpoint.ts';

const SHARED = join(import.meta.dirname, '..', '..', 'shared', 'reference');
const PARTIAL_8B = join(import.meta.dirname, 'assets', 'molmo2-8b', 'config.json');

async function parsed(size: '4b' | '8b') {
  const check = parseMolmo2Config(await publishedConfigJson(size), await readAssetJson('generation_config.json'));
  expect(check.missing).toEqual([]);
  expect(check.errors).toEqual([]);
  return check.config!;
}

const params = (t: Map<string, number[]>) => [...t.values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);

describe('full-size random checkpoint configs', () => {
  it('4b is the published Molmo2-4B config.json unchanged', async () => {
    expect(await publishedConfigJson('4b')).toEqual(await readAssetJson('config.json'));
    const c = await parsed('4b');
    expect([c.vit.hiddenSize, c.vit.declaredLayers, c.vitBlocksUsed]).toEqual([1152, 27, 25]);
    expect(c.text).toMatchObject({ hiddenSize: 2560, numLayers: 36, numHeads: 32, numKvHeads: 8, headDim: 128, intermediateSize: 9728, vocabSize: 151936, additionalVocabSize: 128 });
    const t = expectedTensors(c);
    expect(t.size).toBe(706);
    // The published index's total_parameters.
    expect(params(t)).toBe(4850869200);
  });

  it('8b keeps every seen value of the partial config and fills exactly its placeholders', async () => {
    const partial = JSON.parse(await readFile(PARTIAL_8B, 'utf8'));
    const full = await publishedConfigJson('8b');
    expect(placeholderPaths(full)).toEqual([]);
    expect(MOLMO2_8B_FILLED.map((f) => f.path).sort()).toEqual(placeholderPaths(partial).sort());
    const seen = (j: Record<string, unknown>) => JSON.parse(JSON.stringify(j, (_k, v) => (v === '__MISSING__' ? undefined : v)));
    expect(seen(full)).toMatchObject(seen(partial));
    const c = await parsed('8b');
    expect(c.text).toMatchObject({ hiddenSize: 4096, numLayers: 36, numHeads: 32, numKvHeads: 8, headDim: 128, intermediateSize: 12288, vocabSize: 151936, ropeTheta: 1e6, layerNormEps: 1e-6 });
    expect(c.tieWordEmbeddings).toBe(false);
    expect(c.vitBlocksUsed).toBe(25);
    const t = expectedTensors(c);
    expect(t.size).toBe(706);
    // /work/shared/reference/SOURCES.md: the derived 8B table sums to 8,661,703,120 parameters.
    expect(params(t)).toBe(8661703120);
  });

  it.skipIf(!existsSync(join(SHARED, 'molmo2-8b', 'tensors.derived.json')))('8b tensor table equals the derived reference table', async () => {
    const derived = JSON.parse(await readFile(join(SHARED, 'molmo2-8b', 'tensors.derived.json'), 'utf8')) as Record<string, { shape: number[] }>;
    const t = expectedTensors(await parsed('8b'));
    expect(Object.fromEntries([...t].sort())).toEqual(Object.fromEntries(Object.entries(derived).map(([k, v]) => [k, v.shape]).sort()));
  });

  it('BF16 shards stay within 5 GB, in tensor order', async () => {
    for (const size of ['4b', '8b'] as const) {
      const tensors = [...expectedTensors(await parsed(size))].map(([name, shape]) => ({ name, dtype: 'BF16' as const, shape }));
      const shards = packIntoShards(tensors, 5e9);
      expect(shards.flat().map((t) => t.name)).toEqual(tensors.map((t) => t.name));
      for (const s of shards) expect(s.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 2), 0)).toBeLessThanOrEqual(5e9);
      expect(shards.length).toBe(size === '4b' ? 2 : 4);
    }
  });
});
