import { describe, expect, it } from 'vitest';
import { parseMolmo2Config } from './config.ts';
import { defaultInverseFrequencies, ropeFrequencies, ropeKindOf, ropeKindsUsed, ropeTable, yarnInverseFrequencies, type YarnScaling } from './rope.ts';
import { tinyConfigJson } from './reference/testing.ts';

// Molmo2-O-7B's YaRN as its training config states it (olmo/model_configs.py OLMO3_7B_INSTRUCT).
const O7B_YARN: YarnScaling = { factor: 8, originalMaxPositions: 8192, attentionFactor: 1.2079441541679836, betaFast: 32, betaSlow: 1, truncate: true };

describe('YaRN inverse frequencies', () => {
  it("keep the fast pairs, divide the slow ones by the factor and blend linearly between (O-7B's head_dim 128, θ 500000)", () => {
    // Correction range: D·ln(8192 / (β·2π)) / (2·ln θ) = 18.08 for β = 32 (→ 18) and 34.98 for β = 1 (→ 35).
    const plain = defaultInverseFrequencies(128, 500000);
    const yarn = yarnInverseFrequencies(128, 500000, O7B_YARN);
    for (let i = 0; i <= 18; i++) expect(yarn[i], `pair ${i}`).toBe(plain[i]);
    for (let i = 35; i < 64; i++) expect(yarn[i] / (plain[i] / 8), `pair ${i}`).toBeCloseTo(1, 6);
    for (const i of [19, 26, 34]) {
      const ramp = (i - 18) / 17;
      expect(yarn[i] / (plain[i] / 8 * ramp + plain[i] * (1 - ramp)), `pair ${i}`).toBeCloseTo(1, 6);
    }
  });

  it('without truncation the range is not rounded, and a missing attention factor is 0.1·ln(factor) + 1', () => {
    const config = tinyConfigJson();
    Object.assign(config.text_config as Record<string, unknown>, { rope_scaling: { rope_type: 'yarn', factor: 8.0 }, rope_scaling_layers: [1], max_position_embeddings: 8192 });
    const text = parseMolmo2Config(config).config!.text;
    expect(text.ropeScaling).toEqual({ factor: 8, originalMaxPositions: 8192, attentionFactor: 0.1 * Math.log(8) + 1, betaFast: 32, betaSlow: 1, truncate: true });
    // The published O-7B attention factor is exactly that default.
    expect(text.ropeScaling!.attentionFactor).toBeCloseTo(O7B_YARN.attentionFactor, 15);
    const rounded = yarnInverseFrequencies(128, 500000, O7B_YARN);
    const exact = yarnInverseFrequencies(128, 500000, { ...O7B_YARN, truncate: false });
    expect(exact[19]).not.toBe(rounded[19]); // the ramp starts at 18.08, not 18
    expect(exact[10]).toBe(rounded[10]);
  });

  it('scales cos and sin by the attention factor; the default table is unscaled', () => {
    const text = { headDim: 16, ropeTheta: 500000, ropeScaling: O7B_YARN };
    const plain = ropeTable(ropeFrequencies(text, 'default'), 5, 1);
    const scaled = ropeTable(ropeFrequencies(text, 'scaled'), 5, 1);
    // Pair 0 turns fastest and keeps its frequency: the same angle, times the factor.
    expect(scaled.cos[0]).toBeCloseTo(plain.cos[0] * O7B_YARN.attentionFactor, 6);
    expect(scaled.sin[0]).toBeCloseTo(plain.sin[0] * O7B_YARN.attentionFactor, 6);
    expect(plain.cos[0] ** 2 + plain.sin[0] ** 2).toBeCloseTo(1, 6);
  });
});

describe('which layers read the YaRN table', () => {
  it('only those rope_scaling_layers lists; all when it is null; none without rope_scaling', () => {
    const yarn = { ropeScaling: O7B_YARN, ropeScalingLayers: [3, 7], numLayers: 8 };
    expect(Array.from({ length: 8 }, (_, i) => ropeKindOf(yarn, i))).toEqual(['default', 'default', 'default', 'scaled', 'default', 'default', 'default', 'scaled']);
    expect(ropeKindsUsed(yarn)).toEqual(['default', 'scaled']);
    expect(ropeKindsUsed({ ...yarn, ropeScalingLayers: null })).toEqual(['scaled']);
    expect(ropeKindsUsed({ ropeScaling: null, ropeScalingLayers: null, numLayers: 8 })).toEqual(['default']);
  });
});
