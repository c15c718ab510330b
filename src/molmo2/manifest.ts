// manifest.json of a converted model folder: what the converter wrote and what the runtime loads.
// Platform-free. The converter (tools/) writes it; the browser runtime (workers/) reads and validates it.

export const MANIFEST_FORMAT = 'molmo2-web';
export const MANIFEST_VERSION = 1;

export type Dtype = 'q4f16' | 'q4' | 'fp16' | 'fp32';
export type Target = 'webgpu' | 'cpu';
/** Every dtype and target, in the order of preference. */
export const DTYPES: readonly Dtype[] = ['q4f16', 'q4', 'fp16', 'fp32'];
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
}

export interface ModelVariant {
  target: Target;
  dtype: Dtype;
  vision: GraphFiles;
  decoder: GraphFiles;
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
  dtypes: string[];
  /** Bytes of all files in the folder (every variant). */
  bytes: number;
}
