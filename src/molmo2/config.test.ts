import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decoderStyle, parseMolmo2Config } from './config.ts';
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
    expect(decoderStyle(c.text)).toBe('Qwen3 blocks');
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

  it('reads an OLMo-3 decoder (O-7B): post-norm, q/k norm over the projection, YaRN on the listed layers', () => {
    const base = JSON.parse(readFileSync(join(ref, 'molmo2-4b/config.json'), 'utf8'));
    Object.assign(base.text_config, {
      norm_after: true,
      qk_norm_type: 'olmo',
      num_key_value_heads: 32,
      rope_scaling: { rope_type: 'yarn', factor: 8.0, attention_factor: 1.2079441541679836, original_max_position_embeddings: 8192, beta_fast: 32, beta_slow: 1 },
      rope_scaling_layers: [3, 7, 11],
    });
    const check = parseMolmo2Config(base);
    expect(check.errors).toEqual([]);
    const t = check.config!.text;
    expect(t).toMatchObject({ normAfter: true, qkNormType: 'olmo', ropeScalingLayers: [3, 7, 11], ropeScaling: { factor: 8, originalMaxPositions: 8192, betaFast: 32, betaSlow: 1, truncate: true } });
    expect(decoderStyle(t)).toBe('OLMo-3 blocks (norm after attention and MLP, q/k norm over the projection, YaRN RoPE on 3 of 36 layers)');
    const tensors = expectedTensors(check.config!);
    expect(tensors.get('model.transformer.blocks.0.self_attn.q_norm.weight')).toEqual([32 * 128]);
    expect(tensors.get('model.transformer.blocks.0.self_attn.k_norm.weight')).toEqual([32 * 128]);
  });

  it('refuses RoPE and q/k-norm settings no Molmo2 has, naming the field', () => {
    const bad = (edit: Record<string, unknown>) => {
      const base = JSON.parse(readFileSync(join(ref, 'molmo2-4b/config.json'), 'utf8'));
      Object.assign(base.text_config, edit);
      return parseMolmo2Config(base).errors.join('\n');
    };
    expect(bad({ rope_scaling: { rope_type: 'llama3', factor: 8 } })).toMatch(/rope_scaling type "llama3" is not supported/);
    expect(bad({ rope_scaling: { rope_type: 'yarn', factor: 8 }, rope_scaling_layers: [40] })).toMatch(/rope_scaling_layers must list decoder layers 0\.\.35/);
    expect(bad({ rope_scaling_layers: [1] })).toMatch(/rope_scaling_layers is set but rope_scaling is not/);
    expect(bad({ qk_norm_type: 'gemma' })).toMatch(/qk_norm_type "gemma" is not supported/);
  });
});
