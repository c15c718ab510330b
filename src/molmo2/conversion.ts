// What a conversion writes, shared by the Node converter (tools/lib/converter.ts) and the browser's
// Hub conversion (src/runtime/convert/): the checkpoint files copied as they are, the size estimate
// of a variant, and the manifest. Platform-free.
import type { Molmo2Config } from './config.ts';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type Dtype, type Manifest, type ManifestFile, type ModelVariant, type WeightPrecision } from './manifest.ts';
import { variantPrecision } from './onnx/layers.ts';
import { expectedTensors, type Shape } from './tensors.ts';

export const CONVERTER_VERSION = '0.1.0';

/**
 * Why a checkpoint whose config.json parses still cannot be converted, or undefined. MolmoPoint's
 * config is read (config.ts) and its forward runs in the fp32 reference
 * (reference/molmopoint.ts), but no ONNX graph scores its point head yet. Checked on the raw JSON
 * before parsing, so the reason comes first even when other fields are missing.
 */
export function conversionRefusal(configJson: Record<string, unknown> | undefined): string | undefined {
  const archs = configJson?.architectures;
  const point = configJson?.model_type === 'molmo_point' || (Array.isArray(archs) && archs.some((a) => typeof a === 'string' && a.includes('MolmoPoint')));
  if (point) return 'MolmoPoint checkpoints (grounding-token head) are not supported by the converter yet: its point predictor has no ONNX graphs';
  return undefined;
}

/** The published non-weight files of a Molmo2 checkpoint that are copied as they are. */
export const VERBATIM_CONFIG_FILES = [
  'generation_config.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.jinja',
  'preprocessor_config.json',
  'processor_config.json',
  'video_preprocessor_config.json',
] as const;

/** Non-weight files of a Molmo2 checkpoint; all but config.json are optional to fetch. */
export const CONFIG_FILES = ['config.json', 'tokenizer.json', ...VERBATIM_CONFIG_FILES] as const;

/** Files a converted model cannot run without. */
export const REQUIRED_FILES = ['tokenizer.json', 'generation_config.json'] as const;

/**
 * Bytes per parameter of a linear layer's matrix: int4 / int8 blocks of 32 with one scale each (fp16
 * scales with fp16 activations, fp32 otherwise), or float weights. Vectors (norms, biases) stay float.
 */
function matrixBytesPerParam(weights: WeightPrecision, act: 'float16' | 'float32'): number {
  const scale = act === 'float16' ? 2 : 4;
  return weights === 'int4' ? 0.5 + scale / 32 : weights === 'int8' ? 1 + scale / 32 : weights === 'float16' ? 2 : 4;
}

export function estimateBytes(shapes: Shape[], weights: WeightPrecision, act: 'float16' | 'float32'): number {
  const matrix = matrixBytesPerParam(weights, act);
  const vector = act === 'float16' ? 2 : 4;
  return Math.round(shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1) * (sh.length >= 2 ? matrix : vector), 0));
}

/** Estimated bytes of one variant's vision and decoder files. */
export function estimateVariantBytes(config: Molmo2Config, dtype: Dtype): { vision: number; decoder: number } {
  const vision: Shape[] = [];
  const decoder: Shape[] = [];
  for (const [name, shape] of expectedTensors(config)) (name.startsWith('model.vision_backbone.') ? vision : decoder).push(shape);
  const p = variantPrecision(dtype);
  return { vision: estimateBytes(vision, p.vision, p.activations), decoder: estimateBytes(decoder, p.decoder, p.activations) };
}

export function architectureSummary(config: Molmo2Config, randomWeights: boolean): Manifest['architecture'] {
  const parameters = [...expectedTensors(config).values()].reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0);
  return {
    vitLayers: config.vitBlocksUsed,
    vitHidden: config.vit.hiddenSize,
    textLayers: config.text.numLayers,
    textHidden: config.text.hiddenSize,
    numHeads: config.text.numHeads,
    numKvHeads: config.text.numKvHeads,
    headDim: config.text.headDim,
    vocabSize: config.text.vocabSize,
    parameters,
    randomWeights,
  };
}

export interface ManifestInput {
  name: string;
  source: Manifest['source'];
  converterVersion: string;
  config: Molmo2Config;
  randomWeights: boolean;
  variants: ModelVariant[];
}

/** The manifest of a model folder whose files (manifest.json excepted) are `files`; checks every variant's files are among them. */
export function buildManifest(input: ManifestInput, files: ManifestFile[]): Manifest {
  const present = new Set(files.map((f) => f.path));
  for (const v of input.variants) {
    for (const g of [v.vision, v.decoder]) {
      for (const f of [g.model, ...g.externalData]) {
        if (!present.has(f)) throw new Error(`variant ${v.dtype}/${v.target} refers to ${f}, which was not written`);
      }
    }
  }
  return {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    name: input.name,
    source: input.source,
    createdAt: new Date().toISOString(),
    converterVersion: input.converterVersion,
    architecture: architectureSummary(input.config, input.randomWeights),
    variants: input.variants,
    files: [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
}
