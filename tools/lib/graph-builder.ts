// The converter's link to the ONNX graph builder (src/molmo2/onnx/export.ts), loaded at run time so
// that checking and downloading checkpoints works even where the builder is unavailable.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Molmo2Config } from '../../src/molmo2/config.ts';
import type { Dtype, GraphFiles, Target } from '../../src/molmo2/manifest.ts';
import type { BlockEncoder } from '../../src/molmo2/onnx/encode.ts';
import type { ChunkSink } from '../../src/molmo2/onnx/graph.ts';
import type { WeightReader } from '../../src/molmo2/weights.ts';

export interface ExportVariantOptions {
  config: Molmo2Config;
  weights: WeightReader;
  dtype: Dtype;
  target: Target;
  /** Writes one output file; `relPath` is relative to the model folder, with forward slashes. */
  write: (relPath: string, bytes: Uint8Array) => Promise<void>;
  /** Streams one external-data file to disk (bytes in file order), hashed as written. */
  openChunk?: (relPath: string) => Promise<ChunkSink>;
  /** Runs weight encoding jobs on the converter's worker threads. */
  encoder?: BlockEncoder;
  log?: (msg: string) => void;
}

/** Builds the vision and decoder graphs of one variant and writes them through `write`. */
export type ExportVariant = (opts: ExportVariantOptions) => Promise<GraphFiles[] | { vision: GraphFiles; decoder: GraphFiles }>;

export const GRAPH_BUILDER_PATH = fileURLToPath(new URL('../../src/molmo2/onnx/export.ts', import.meta.url));

export class GraphBuilderUnavailable extends Error {}

export async function loadGraphBuilder(): Promise<ExportVariant> {
  if (!existsSync(GRAPH_BUILDER_PATH)) throw new GraphBuilderUnavailable(`the ONNX graph builder (${GRAPH_BUILDER_PATH}) is not available`);
  const mod = (await import(pathToFileURL(GRAPH_BUILDER_PATH).href)) as { exportVariant?: unknown };
  if (typeof mod.exportVariant !== 'function') throw new GraphBuilderUnavailable(`${GRAPH_BUILDER_PATH} does not export a function exportVariant`);
  return mod.exportVariant as ExportVariant;
}

/** Accepts either result shape of exportVariant: [vision, decoder] or { vision, decoder }. */
export function visionAndDecoder(result: Awaited<ReturnType<ExportVariant>>): { vision: GraphFiles; decoder: GraphFiles } {
  if (Array.isArray(result)) {
    if (result.length !== 2) throw new Error(`the graph builder returned ${result.length} graphs; expected vision and decoder`);
    return { vision: result[0], decoder: result[1] };
  }
  if (!result?.vision || !result?.decoder) throw new Error('the graph builder did not return vision and decoder graphs');
  return result;
}
