import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../src/molmo2/manifest.ts';
import { DEMO_WEIGHTS_FILE } from './lib/demo-checkpoint.ts';
import { DEMO_MODEL_NAME, DEMO_MODEL_TITLE, RANDOM_MODEL_NAME, prepareDefaultModel } from './prepare-default-model.ts';

let root: string;
/** Where no demo weights are: the random tiny model's path. */
const NO_DEMO = '/nonexistent/trained.safetensors';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'prepare-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('prepareDefaultModel', () => {
  it('leaves public/models alone when a converted model is there', async () => {
    const dir = join(root, 'with-model');
    await mkdir(join(dir, 'public', 'models', 'Molmo2-4B'), { recursive: true });
    await writeFile(join(dir, 'public', 'models', 'Molmo2-4B', 'manifest.json'), '{}');
    const logs: string[] = [];
    expect(await prepareDefaultModel(dir, (m) => logs.push(m), NO_DEMO)).toBe('existing');
    expect(logs.join('\n')).toMatch(/Molmo2-4B/);
    expect(existsSync(join(dir, '.cache'))).toBe(false);
  });

  it('without demo weights, ignores unfinished folders and builds the tiny random model', async () => {
    const dir = join(root, 'empty');
    await mkdir(join(dir, 'public', 'models', 'x.tmp-12345'), { recursive: true });
    await writeFile(join(dir, 'public', 'models', 'x.tmp-12345', 'manifest.json'), '{}');
    const logs: string[] = [];
    const outcome = await prepareDefaultModel(dir, (m) => logs.push(m), NO_DEMO);
    expect(existsSync(join(dir, '.cache', 'tiny-checkpoint', 'model.safetensors.index.json'))).toBe(true);
    expect(outcome).toBe('built');
    const manifest = JSON.parse(await readFile(join(dir, 'public', 'models', RANDOM_MODEL_NAME, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.architecture.randomWeights).toBe(true);
    expect(manifest.variants.map((v) => `${v.dtype}/${v.target}`).sort()).toEqual(['fp32/webgpu', 'q4/webgpu']);
    // A second call finds the model.
    expect(await prepareDefaultModel(dir, () => {}, NO_DEMO)).toBe('existing');
  });

  it('builds the demo model from the weights the repository keeps, beside other models, once per weights file', async () => {
    const dir = join(root, 'demo');
    await mkdir(join(dir, 'public', 'models', 'Molmo2-4B'), { recursive: true });
    await writeFile(join(dir, 'public', 'models', 'Molmo2-4B', 'manifest.json'), '{}');
    expect(await prepareDefaultModel(dir, () => {}, DEMO_WEIGHTS_FILE)).toBe('built');
    const manifest = JSON.parse(await readFile(join(dir, 'public', 'models', DEMO_MODEL_NAME, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.name).toBe(DEMO_MODEL_TITLE);
    expect(manifest.architecture.randomWeights).toBe(false);
    expect(manifest.variants.map((v) => `${v.dtype}/${v.target}`).sort()).toEqual(['fp32/webgpu', 'q4/webgpu']);
    expect(existsSync(join(dir, 'public', 'models', RANDOM_MODEL_NAME))).toBe(false);
    expect(await prepareDefaultModel(dir, () => {}, DEMO_WEIGHTS_FILE)).toBe('existing');
    // Other weights (a retrained model) are converted again.
    const other = join(dir, 'other.safetensors');
    const bytes = await readFile(DEMO_WEIGHTS_FILE);
    bytes[bytes.length - 1] ^= 1;
    await writeFile(other, bytes);
    expect(await prepareDefaultModel(dir, () => {}, other)).toBe('built');
  });
});
