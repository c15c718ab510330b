// Converts one variant (dtype × target) of a Molmo2 checkpoint into its vision and decoder graphs,
// streaming the weights block by block into external-data chunks (through `openChunk` sinks as the
// bytes arrive, or collected per chunk and written through `write`).
import type { Molmo2Config } from '../config.ts';
import { DTYPES, TARGETS, type Dtype, type GraphFiles, type Target } from '../manifest.ts';
import { CheckedWeights, type WeightSource } from './checked-weights.ts';
import { buildDecoder as buildPortableDecoder, type DecoderOptions } from './decoder.ts';
import { buildDecoder as buildWebgpuDecoder, prefillChunkOf, supportsStaticCache } from './decoder-webgpu.ts';
import type { BlockEncoder } from './encode.ts';
import type { OpenChunk, WriteFile } from './external-data.ts';
import { ModelFile } from './model-file.ts';
import { DEFAULT_Q4, decoderDtype, precisionOf, type Q4Settings } from './layers.ts';
import { buildVision } from './vision.ts';

export interface ExportOptions {
  config: Molmo2Config;
  weights: WeightSource;
  dtype: Dtype;
  target: Target;
  /** Writes one output file; `relPath` is relative to the model folder, with forward slashes. */
  write: WriteFile;
  /** Streams each external-data file to its destination instead (the `.onnx` files still go through `write`). */
  openChunk?: OpenChunk;
  /** Runs the weight encoding jobs (default: in this thread, from whole tensors read through `weights`). */
  encoder?: BlockEncoder;
  log?: (msg: string) => void;
  /** Largest external-data chunk (default 1 GiB). */
  maxChunkBytes?: number;
  q4?: Partial<Q4Settings>;
  /**
   * The files of a decoder built before with the same decoder precision (decoderDtype) and target:
   * the variant uses them instead of building its own.
   */
  reuseDecoder?: GraphFiles;
  /** Test hooks for the decoder (mask rule, logits of every position). */
  decoder?: Pick<DecoderOptions, 'mask' | 'logits'>;
  /** Query rows per prefill attention chunk of the WebGPU decoder (default PREFILL_CHUNK_TOKENS). */
  prefillChunk?: number;
}

/**
 * Writes `onnx/<target>/vision_<dtype>.onnx` and `onnx/<target>/decoder_<decoderDtype(dtype)>.onnx`
 * with their `.onnx_data` chunks (the decoder only without `reuseDecoder`); returns [vision, decoder].
 */
export async function exportVariant(opts: ExportOptions): Promise<GraphFiles[]> {
  const { dtype, target } = opts;
  if (!DTYPES.includes(dtype)) throw new Error(`unknown dtype "${String(dtype)}" (choose ${DTYPES.join(', ')})`);
  if (!TARGETS.includes(target)) throw new Error(`unknown target "${String(target)}" (choose ${TARGETS.join(', ')})`);
  const log = opts.log ?? (() => {});
  const precision = precisionOf(dtype);
  const q4 = { ...DEFAULT_Q4, ...opts.q4 };
  const weights = new CheckedWeights(opts.config, opts.weights, opts.encoder);
  const dir = `onnx/${target}`;
  const fileOptions = { maxChunkBytes: opts.maxChunkBytes, open: opts.openChunk };

  const files: ModelFile[] = [];
  try {
    const vision = new ModelFile(dir, `vision_${dtype}`, opts.write, fileOptions);
    files.push(vision);
    log(`${dir}/vision_${dtype}.onnx: building`);
    await buildVision(vision.graph, weights, { precision, q4 });
    const visionFiles = await vision.finish();
    if (opts.reuseDecoder) return [visionFiles, opts.reuseDecoder];

    const stem = `decoder_${decoderDtype(dtype)}`;
    const decoder = new ModelFile(dir, stem, opts.write, fileOptions);
    files.push(decoder);
    const build = target === 'webgpu' ? buildWebgpuDecoder : buildPortableDecoder;
    log(`${dir}/${stem}.onnx: building`);
    const prefillChunk = prefillChunkOf(opts.config.text.maxPositionEmbeddings, opts.prefillChunk);
    await build(decoder.graph, weights, { precision, q4, prefillChunk, ...opts.decoder });
    const decoderFiles = await decoder.finish();
    // The runtime sizes its prefills from the chunk (limits.ts); the portable decoder has none.
    const chunked = target === 'webgpu' && supportsStaticCache(opts.config.text.headDim);
    return [visionFiles, chunked ? { ...decoderFiles, prefillChunk } : decoderFiles];
  } catch (e) {
    // Stops the stores still running and gives up the files still open.
    for (const f of files) f.external.fail(e);
    throw e;
  }
}
