import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../src/molmo2/manifest.ts';
import { DEMO_MODEL_NAME, prepareDefaultModel } from './prepare-default-model.ts';

let root: string;
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
    expect(await prepareDefaultModel(dir, (m) => logs.push(m))).toBe('existing');
    expect(logs.join('\n')).toMatch(/Molmo2-4B/);
    expect(existsSync(join(dir, '.cache'))).toBe(false);
  });

  it('ignores unfinished folders and builds the tiny demo model', async () => {
    const dir = join(root, 'empty');
    await mkdir(join(dir, 'public', 'models', 'x.tmp-12345'), { recursive: true });
    await writeFile(join(dir, 'public', 'models', 'x.tmp-12345', 'manifest.json'), '{}');
    const logs: string[] = [];
    const outcome = await prepareDefaultModel(dir, (m) => logs.push(m));
    expect(existsSync(join(dir, '.cache', 'tiny-checkpoint', 'model.safetensors.index.json'))).toBe(true);
    expect(outcome).toBe('built');
    const manifest = JSON.parse(await readFile(join(dir, 'public', 'models', DEMO_MODEL_NAME, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.architecture.randomWeights).toBe(true);
    expect(manifest.variants.map((v) => `${v.dtype}/${v.target}`).sort()).toEqual(['fp32/webgpu', 'q4/webgpu']);
    // A second call finds the model.
    expect(await prepareDefaultModel(dir, () => {})).toBe('existing');
  });
});
