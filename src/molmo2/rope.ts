// Rotary position tables of Molmo2's decoders, as the HF remote code builds them
// (`Molmo2RotaryEmbedding` with transformers 4.57's `ROPE_INIT_FUNCTIONS`):
//   default  inv_freq[i] = 1 / θ^(2i/D), cos/sin unscaled (Molmo2-4B, -8B, and O-7B's other layers);
//   yarn     YaRN's blend of interpolated and extrapolated frequencies, cos/sin multiplied by its
//            attention factor (Molmo2-O-7B, only on the layers `rope_scaling_layers` lists).
// Everything is float32 as the reference computes it; platform-free, shared by the TS reference and
// the ONNX graph builders.
import type { TextConfig } from './config.ts';

/** text_config.rope_scaling of type "yarn" (the only scaling a Molmo2 checkpoint uses). */
export interface YarnScaling {
  factor: number;
  /** The pre-YaRN context length; max_position_embeddings when the config omits it. */
  originalMaxPositions: number;
  /** Multiplies cos and sin; 0.1·ln(factor) + 1 when the config omits it (no mscale keys here). */
  attentionFactor: number;
  betaFast: number;
  betaSlow: number;
  /** Round the correction range to whole dimensions (transformers' default). */
  truncate: boolean;
}

/** Which table a layer reads. */
export type RopeKind = 'default' | 'scaled';

export interface RopeFrequencies {
  invFreq: Float32Array;
  /** Multiplies cos and sin (1 for default RoPE). */
  attentionFactor: number;
}

/** The table decoder layer `layer` reads: the scaled one only on the listed layers of a YaRN model. */
export function ropeKindOf(text: Pick<TextConfig, 'ropeScaling' | 'ropeScalingLayers'>, layer: number): RopeKind {
  if (!text.ropeScaling) return 'default';
  // Without a list every layer is scaled (the HF module then has a single rotary embedding).
  return text.ropeScalingLayers === null || text.ropeScalingLayers.includes(layer) ? 'scaled' : 'default';
}

/** The kinds a decoder's layers use, each once, in a fixed order. */
export function ropeKindsUsed(text: Pick<TextConfig, 'ropeScaling' | 'ropeScalingLayers' | 'numLayers'>): RopeKind[] {
  const used = new Set(Array.from({ length: text.numLayers }, (_, i) => ropeKindOf(text, i)));
  return (['default', 'scaled'] as const).filter((k) => used.has(k));
}

/** inv_freq[i] = 1 / θ^(2i/D) in float32, as `_compute_default_rope_parameters` computes it. */
export function defaultInverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(theta ** Math.fround((2 * i) / headDim));
  return inv;
}

/**
 * YaRN (`_compute_yarn_parameters`, transformers 4.57): dimension pairs that turn fewer than
 * beta_slow times over the original context are interpolated (inv_freq / factor), those that turn
 * more than beta_fast times keep their frequency, and a linear ramp over the pair index blends the
 * two in between. dim = head_dim (the config's, not hidden / heads).
 */
export function yarnInverseFrequencies(headDim: number, theta: number, y: YarnScaling): Float32Array {
  const half = headDim / 2;
  // The dimension at which a frequency makes `rotations` turns over the original context.
  const correctionDim = (rotations: number) => (headDim * Math.log(y.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  let low = correctionDim(y.betaFast);
  let high = correctionDim(y.betaSlow);
  if (y.truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, headDim - 1);
  if (low === high) high += 0.001;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const posFreq = Math.fround(theta ** Math.fround((2 * i) / headDim));
    const extrapolation = Math.fround(1 / posFreq);
    const interpolation = Math.fround(1 / Math.fround(y.factor * posFreq));
    const ramp = Math.fround(Math.min(1, Math.max(0, Math.fround(Math.fround(i - low) / Math.fround(high - low)))));
    const keep = Math.fround(1 - ramp); // the share of the extrapolated (unscaled) frequency
    inv[i] = Math.fround(Math.fround(interpolation * Math.fround(1 - keep)) + Math.fround(extrapolation * keep));
  }
  return inv;
}

/** The frequencies and cos/sin factor of one kind of table. */
export function ropeFrequencies(text: Pick<TextConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>, kind: RopeKind): RopeFrequencies {
  if (kind === 'default' || !text.ropeScaling) return { invFreq: defaultInverseFrequencies(text.headDim, text.ropeTheta), attentionFactor: 1 };
  return { invFreq: yarnInverseFrequencies(text.headDim, text.ropeTheta, text.ropeScaling), attentionFactor: text.ropeScaling.attentionFactor };
}

/**
 * cos/sin [n, D/2] for positions from .. from+n−1: float32 angle = inv_freq · position, then
 * cos/sin (in double, rounded to float32) times the attention factor, as the HF module does.
 */
export function ropeTable(f: RopeFrequencies, from: number, n: number): { cos: Float32Array; sin: Float32Array } {
  const half = f.invFreq.length;
  const cos = new Float32Array(n * half);
  const sin = new Float32Array(n * half);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(f.invFreq[i] * (from + p));
      cos[p * half + i] = f.attentionFactor === 1 ? Math.cos(angle) : Math.fround(Math.cos(angle)) * f.attentionFactor;
      sin[p * half + i] = f.attentionFactor === 1 ? Math.sin(angle) : Math.fround(Math.sin(angle)) * f.attentionFactor;
    }
  }
  return { cos, sin };
}
