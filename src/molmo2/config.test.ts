import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decoderStyle, parseMolmo2Config } from './config.ts';
import { expectedTensors } from './tensors.ts';
import { tinyConfigJson, tinyPointConfigJson } from './reference/testing.ts';

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

describe('MolmoPoint configs', () => {
  const point = (edit: (json: Record<string, any>) => void = () => {}) => {
    const json = tinyPointConfigJson() as Record<string, any>;
    edit(json);
    return parseMolmo2Config(json);
  };

  it('reads the point head into `point`, and the two ids the converter leaves out from where the tokenizer puts them', () => {
    const check = point();
    expect(check.missing).toEqual([]);
    expect(check.errors).toEqual([]);
    const c = check.config!;
    expect(c.point).toEqual({
      patchTokenId: 331,
      subpatchTokenId: 332,
      locationTokenId: 333,
      nonIndexablePatchId: 326,
      patchLocation: '3x3',
      noMorePointsClass: true,
      patchEmbedDim: 14,
      layerNormX: true,
      normX: false,
      normLogits: true,
      rotary: 'one_d',
      rotaryTheta: 50000,
      // mask_repeats "inference", mask_patches "always", mask_subpatches "inference"
      rules: { preventRepeats: true, forcePatchSorted: true, forceSubpatchSorted: true },
      poolingPositions: 9,
      poolingOutLayer: false,
      tiedLmHead: false,
    });
    // low_res_image_start_token_id null → <im_start> + 4; no image_low_res_id → the non-indexable id.
    expect(c.tokens.lowResImageStart).toBe(324);
    expect(c.tokens.imageLowRes).toBe(326);
    // A Molmo2 config has no point section.
    expect(parseMolmo2Config(tinyConfigJson()).config!.point).toBeUndefined();
  });

  it('takes the decoder θ for the rotation when the config has none, and norm_logits true when absent', () => {
    const c = point((j) => {
      j.token_prediction_rotary_theta = null;
      delete j.norm_logits;
      j.mask_repeats = 'always'; // the remote code prevents repeats only for "all" / "inference"
    }).config!;
    expect(c.point!.rotaryTheta).toBe(10000);
    expect(c.point!.normLogits).toBe(true);
    expect(c.point!.rules.preventRepeats).toBe(false);
  });

  it('refuses what the remote code cannot run, naming the field', () => {
    const errors = (edit: (json: Record<string, any>) => void) => point(edit).errors.join('\n');
    expect(errors((j) => (j.token_prediction_rotary = true))).toMatch(/token_prediction_rotary true is not supported/);
    expect(errors((j) => (j.token_prediction_rotary = 'twh'))).toMatch(/token_prediction_rotary "twh" is not supported/);
    expect(errors((j) => (j.patch_location = '2x2'))).toMatch(/patch_location "2x2" is not supported/);
    expect(errors((j) => (j.embed_selected_vit_patch = 'linear_with_pos'))).toMatch(/embed_selected_vit_patch "linear_with_pos" is not supported/);
    expect(errors((j) => (j.embed_location = true))).toMatch(/embed_location true is not supported/);
    expect(errors((j) => (j.mask_patches = 'sometimes'))).toMatch(/mask_patches "sometimes" is not supported/);
    expect(errors((j) => (j.text_config.additional_vocab_size = 16))).toMatch(/additional_vocab_size 16 is not supported for MolmoPoint/);
    expect(errors((j) => (j.patch_embed_dim = 15))).toMatch(/patch_embed_dim must be a positive even integer/);
    expect(errors((j) => (j.architectures = ['Molmo2ForConditionalGeneration']))).toMatch(/do not match model_type "molmo_point"/);
    expect(errors((j) => (j.model_type = 'molmo_point2'))).toMatch(/model_type "molmo_point2" is not a Molmo2 or MolmoPoint checkpoint/);
    // Without layer_norm_x the remote code reads norm_x, which MolmoPointConfig does not define.
    expect(point((j) => (j.layer_norm_x = false)).missing).toEqual(['norm_x']);
    expect(point((j) => Object.assign(j, { layer_norm_x: false, norm_x: true })).config!.point).toMatchObject({ layerNormX: false, normX: true });
    expect(point((j) => delete j.adapter_config.attention_pooling_out_layer).missing).toEqual(['adapter_config.attention_pooling_out_layer']);
    expect(point((j) => delete j.patch_token_id).missing).toEqual(['patch_token_id']);
  });

  it("derives MolmoPoint's tensor table: model.vit / model.connector, the point head, an lm head of base + 128 rows", () => {
    const c = point().config!;
    const t = expectedTensors(c);
    const names = [...t.keys()];
    expect(names.filter((n) => n.startsWith('model.vision_backbone') || n === 'lm_head.weight')).toEqual([]);
    const vitWidth = 24 * 2;
    expect(t.get('model.vit.patch_embedding.weight')).toEqual([24, 588]);
    expect(t.get('model.vit.transformer.resblocks.3.attention.wq.weight')).toEqual([24, 24]);
    expect(t.has('model.vit.transformer.resblocks.4.attention.wq.weight')).toBe(false);
    expect(t.get('model.connector.image_pooling_2d.wq.weight')).toEqual([30, vitWidth]);
    expect(t.has('model.connector.image_pooling_2d.wo.weight')).toBe(false);
    expect(t.get('model.connector.positional_embeddings.bias')).toEqual([9, vitWidth]);
    expect(t.get('model.connector.image_projector.w2.weight')).toEqual([36, 44]);
    expect(t.get('model.build_vit_embedding.weight')).toEqual([36, vitWidth]);
    expect(t.get('model.build_vit_embedding.bias')).toEqual([36]);
    for (const n of ['patch_q', 'patch_k', 'subpatch_q']) {
      expect(t.get(`model.point_predictor.${n}.weight`)).toEqual([14, 36]);
      expect(t.get(`model.point_predictor.${n}.bias`)).toEqual([14]);
    }
    expect(t.get('model.point_predictor.subpatch_k.weight')).toEqual([14, vitWidth]);
    expect(t.get('model.point_predictor.add_no_point_class_embed.vector')).toEqual([14]);
    expect(t.get('model.point_predictor.subpatch_loc_k.weight')).toEqual([9, 36]);
    expect(t.get('model.point_predictor.x_norm.weight')).toEqual([36]);
    expect(t.get('lm_head.output_embeddings')).toEqual([320, 36]);
    expect(t.get('lm_head.new_output_embeddings')).toEqual([128, 36]);
    expect(t.get('model.transformer.wte.new_embedding')).toEqual([128, 36]);

    // Tied: no lm_head copies; no location head; no x_norm; pooling with wo; no position rows.
    const other = expectedTensors(
      point((j) => {
        j.text_config.tie_word_embeddings = true;
        j.patch_location = null;
        Object.assign(j, { layer_norm_x: false, norm_x: false });
        Object.assign(j.adapter_config, { positional_embeddings: null, attention_pooling_out_layer: true });
      }).config!,
    );
    const otherNames = [...other.keys()];
    for (const gone of ['lm_head.output_embeddings', 'lm_head.new_output_embeddings', 'model.point_predictor.subpatch_loc_k.weight', 'model.point_predictor.x_norm.weight', 'model.connector.positional_embeddings.bias']) {
      expect(otherNames, gone).not.toContain(gone);
    }
    expect(other.get('model.connector.image_pooling_2d.wo.weight')).toEqual([30, 30]);
  });
});
