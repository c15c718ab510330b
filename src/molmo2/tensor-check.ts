// Compares a checkpoint's tensor table with what its config.json implies. Platform-free: the Node
// converter and the browser's Hub conversion both check a checkpoint with it before reading weights.
import type { Shape } from './tensors.ts';

/** Result of comparing a checkpoint's tensors with expectedTensors(config). */
export interface TensorCheck {
  missing: string[];
  wrongShape: { name: string; expected: Shape; actual: Shape }[];
  /** Tensors this product does not know; conversion stops on these. */
  unexpected: string[];
  /** Known extras that are skipped: ViT blocks after the last one the adapter reads, RoPE buffers. */
  ignored: string[];
  ok: boolean;
}

/**
 * Documented extras. The remote code builds only the ViT blocks up to the deepest one the adapter
 * reads, but a checkpoint saved from the full 27-block ViT would carry the rest (Molmo2's
 * `model.vision_backbone.image_vit`, MolmoPoint's `model.vit`); some exports also save RoPE
 * `inv_freq` buffers; a MolmoPoint with a tied lm head may still carry its copies of the embedding
 * (`lm_head.output_embeddings`, `lm_head.new_output_embeddings`, which the table lists when untied).
 * None affects the converted model.
 */
export function isIgnorableExtra(name: string, vitBlocksUsed: number): boolean {
  if (name.endsWith('.inv_freq')) return true;
  if (name === 'lm_head.output_embeddings' || name === 'lm_head.new_output_embeddings') return true;
  const m = /^model\.(?:vision_backbone\.image_vit|vit)\.transformer\.resblocks\.(\d+)\./.exec(name);
  return m !== null && Number(m[1]) >= vitBlocksUsed;
}

export function checkTensors(actual: Map<string, Shape>, expected: Map<string, Shape>, vitBlocksUsed: number): TensorCheck {
  const missing: string[] = [];
  const wrongShape: TensorCheck['wrongShape'] = [];
  for (const [name, shape] of expected) {
    const got = actual.get(name);
    if (!got) missing.push(name);
    else if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) wrongShape.push({ name, expected: shape, actual: got });
  }
  const unexpected: string[] = [];
  const ignored: string[] = [];
  for (const name of actual.keys()) {
    if (expected.has(name)) continue;
    (isIgnorableExtra(name, vitBlocksUsed) ? ignored : unexpected).push(name);
  }
  return { missing, wrongShape, unexpected, ignored, ok: missing.length === 0 && wrongShape.length === 0 && unexpected.length === 0 };
}

/** Human-readable lines for a failed TensorCheck (long lists are shortened). */
export function describeTensorCheck(check: TensorCheck): string[] {
  const list = (xs: string[]) => (xs.length > 8 ? `${xs.slice(0, 8).join(', ')} … (${xs.length} in all)` : xs.join(', '));
  const lines: string[] = [];
  if (check.missing.length) lines.push(`missing tensors: ${list(check.missing)}`);
  for (const w of check.wrongShape.slice(0, 8)) lines.push(`tensor ${w.name} has shape [${w.actual}], expected [${w.expected}] from config.json`);
  if (check.wrongShape.length > 8) lines.push(`… ${check.wrongShape.length - 8} more tensors with the wrong shape`);
  if (check.unexpected.length) lines.push(`unknown tensors (not part of a Molmo2 checkpoint): ${list(check.unexpected)}`);
  return lines;
}
