import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMolmo2Config } from './config.ts';
import { expectedTensors } from './tensors.ts';

const ref = join(import.meta.dirname, '../../../shared/reference');
const read = (p: string) => JSON.parse(readFileSync(join(ref, p), 'utf8'));

describe.runIf(existsSync(ref))('published Molmo2 configs', () => {
  it('reads Molmo2-4B completely and derives its published tensor table', () => {
    const check = parseMolmo2Config(read('molmo2-4b/config.json'), read('molmo2-4b/generation_config.json'));
    expect(check.missing).toEqual([]);
    expect(check.errors).toEqual([]);
    const c = check.config!;
    expect(c.adapter.vitLayers).toEqual([24, 18]);
    expect(c.vitBlocksUsed).toBe(25);
    expect(c.text.ropeTheta).toBe(5e6);
    expect(c.tokens.bos).toBe(151645);
    const derived = read('molmo2-4b/tensors.derived.json') as Record<string, { shape: number[] }>;
    const index = read('molmo2-4b/model.safetensors.index.json').weight_map as Record<string, string>;
    const expected = expectedTensors(c);
    expect([...expected.keys()].sort()).toEqual(Object.keys(index).sort());
    for (const [name, shape] of expected) expect(shape, name).toEqual(derived[name].shape);
  });

  it('names exactly the __MISSING__ fields of the partial 8B config', () => {
    const raw = readFileSync(join(ref, 'molmo2-8b/config.json'), 'utf8');
    const check = parseMolmo2Config(JSON.parse(raw), read('molmo2-8b/generation_config.json'));
    const placeholders = [...raw.matchAll(/"([a-z_0-9]+)": "__MISSING__"/g)].map((m) => m[1]);
    expect(check.missing.length).toBe(placeholders.length);
    expect(check.missing.map((p) => p.split('.').at(-1)).sort()).toEqual(placeholders.sort());
    expect(check.errors).toEqual([]);
    expect(check.config).toBeUndefined();
  });

  it('rejects an OLMo-3 decoder with a clear reason', () => {
    const base = JSON.parse(readFileSync(join(ref, 'molmo2-4b/config.json'), 'utf8'));
    base.text_config.norm_after = true;
    base.text_config.qk_norm_type = 'olmo';
    const check = parseMolmo2Config(base);
    expect(check.errors.join('\n')).toMatch(/OLMo/);
  });
});
