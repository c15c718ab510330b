// manifest.json of a converted model folder: what the converter wrote and what the runtime loads.
// Platform-free. The converter (tools/) writes it; the browser runtime (workers/) reads and validates it.

export const MANIFEST_FORMAT = 'molmo2-web';
export const MANIFEST_VERSION = 2;
/** Version 1 folders (no per-graph precision) still load: their precision follows from the dtype. */
export const MANIFEST_VERSIONS_READ: readonly number[] = [1, 2];

/**
 * q4f16 / q4: int4 decoder, vision encoder at fp16 / int8. The `-int4vision` variants quantize the
 * vision encoder to int4 too: smaller, and less accurate at pointing.
 */
export type Dtype = 'q4f16' | 'q4' | 'q4f16-int4vision' | 'q4-int4vision' | 'fp16' | 'fp32';
export type Target = 'webgpu' | 'cpu';
/** Every dtype and target, in the order of preference. */
export const DTYPES: readonly Dtype[] = ['q4f16', 'q4', 'q4f16-int4vision', 'q4-int4vision', 'fp16', 'fp32'];

/** Whether a dtype computes with float16 activations (needs shader-f16 on WebGPU). */
export function hasFloat16Activations(dtype: Dtype): boolean {
  return dtype === 'q4f16' || dtype === 'q4f16-int4vision' || dtype === 'fp16';
}

/** How a graph's linear-layer weights are stored. */
export type WeightPrecision = 'int4' | 'int8' | 'float16' | 'float32';

/** What a variant computes with: recorded by the converter, shown by the model panel. */
export interface VariantPrecision {
  /** Linear layers of the vision encoder (ViT, attention pooling, projector). */
  vision: WeightPrecision;
  /** Linear layers of the decoder (the LM head included). */
  decoder: WeightPrecision;
  /** Activations entering the linear layers; residual streams, norms and attention are float32. */
  activations: 'float16' | 'float32';
}

/** The precision a version-1 manifest's variant had (every linear layer int4 in q4 / q4f16). */
export function legacyPrecision(dtype: Dtype): VariantPrecision {
  const activations = hasFloat16Activations(dtype) ? 'float16' : 'float32';
  const linear: WeightPrecision = dtype.startsWith('q4') ? 'int4' : dtype === 'fp16' ? 'float16' : 'float32';
  return { vision: linear, decoder: linear, activations };
}
export const TARGETS: readonly Target[] = ['webgpu', 'cpu'];

export interface ManifestFile {
  /** Path relative to the model folder, with forward slashes. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface GraphFiles {
  /** The .onnx graph file. */
  model: string;
  /** External-data chunks referenced by the graph (each ≤ 1 GiB), in order. */
  externalData: string[];
  /**
   * WebGPU decoders: query rows per attention chunk of a prefill (absent: the graph builds one mask
   * for the whole prefill, as converters before chunked prefill did).
   */
  prefillChunk?: number;
}

export interface ModelVariant {
  target: Target;
  dtype: Dtype;
  vision: GraphFiles;
  /** Variants that differ only in the vision encoder share one decoder's files. */
  decoder: GraphFiles;
  precision: VariantPrecision;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: number;
  /** Display name, e.g. "Molmo2-4B". */
  name: string;
  source: { repo: string; revision: string };
  createdAt: string;
  converterVersion: string;
  /** Summary for the UI and for memory estimates. */
  architecture: {
    vitLayers: number;
    vitHidden: number;
    textLayers: number;
    textHidden: number;
    numHeads: number;
    numKvHeads: number;
    headDim: number;
    vocabSize: number;
    parameters: number;
    /** True when the checkpoint's weights are random (tiny demo and test models). */
    randomWeights: boolean;
  };
  variants: ModelVariant[];
  /** Every file in the folder except manifest.json itself. */
  files: ManifestFile[];
}

/** An entry of /models/index.json: a converted model folder the app serves from public/models/. */
export interface BundledModel {
  /** Folder name: the model is served at /models/<folder>/. */
  folder: string;
  name: string;
  randomWeights: boolean;
  /** The repository it was converted from and its size: which family member it is (family.ts). */
  source: { repo: string };
  parameters: number;
  /** Each variant and what loading it downloads (its graphs and weights plus the shared files). */
  variants: { dtype: string; bytes: number }[];
}

/**
 * Bytes a browser downloads to load variant `v`: its own graph and weight files, plus the files no
 * variant's graph owns (configs, tokenizer, chat template). Other variants' files are not fetched.
 */
export function variantDownloadBytes(manifest: Pick<Manifest, 'variants' | 'files'>, v: ModelVariant): number {
  const graphFiles = (g: GraphFiles) => [g.model, ...g.externalData];
  const own = new Set([...graphFiles(v.vision), ...graphFiles(v.decoder)]);
  const anyGraph = new Set(manifest.variants.flatMap((x) => [...graphFiles(x.vision), ...graphFiles(x.decoder)]));
  return manifest.files.filter((f) => own.has(f.path) || !anyGraph.has(f.path)).reduce((sum, f) => sum + f.bytes, 0);
}
