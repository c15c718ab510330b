// Data exchanged between the page and the inference worker. Everything here is structured-cloneable
// (plain objects, typed arrays, ImageBitmap, FileSystemDirectoryHandle, File).
import type { Dtype, Manifest, Target, VariantPrecision } from '../molmo2/manifest.ts';
import type { ChatTurn } from '../molmo2/prompt.ts';
import type { WorkerErrorCode } from '../../workers/worker-error.ts';
import type { AskLimits } from './limits.ts';
import type { GraphPlacement } from './placement.ts';
import type { ContextPlan } from './device-plan.ts';
import type { ModelCard } from '../molmo2/family.ts';

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter: boolean;
}

export interface Capabilities {
  /** True only when requestAdapter() returned a real adapter. */
  webgpu: boolean;
  adapter?: AdapterSummary;
  shaderF16: boolean;
  subgroups: boolean;
  /** [min, max] lanes per subgroup as the adapter reports them. */
  subgroupSizes?: [number, number];
  /** True when the adapter's subgroup features are hidden from onnxruntime (subgroups narrower than 8 lanes). */
  subgroupGuard: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Rough bytes of GPU-usable memory (see estimateAvailableMemory). */
  estimatedMemoryBytes: number;
  /** navigator.deviceMemory in GiB where the browser exposes it. */
  deviceMemoryGiB?: number;
  storage?: { usage: number; quota: number };
  /** The weights' dtype this device should use. */
  preferredDtype: Dtype;
  /** Plain-language explanation when the model cannot run here, or a caveat. */
  message?: string;
}

/** Where a converted model folder comes from. */
export type ModelSource =
  /** A folder served over HTTP(S): the app's own `/models/<name>/` or any base URL with CORS. */
  | { kind: 'url'; url: string }
  /** A folder the user picked with the File System Access API. */
  | { kind: 'directory'; handle: FileSystemDirectoryHandle }
  /** Files of a folder the user picked with `<input webkitdirectory>` (webkitRelativePath set). */
  | { kind: 'files'; files: File[] }
  /** A model already in the browser cache (id from listCachedModels). */
  | { kind: 'cached'; id: string };

export interface LoadOptions {
  /** Force a weights dtype instead of the device's preferred one. */
  dtype?: Dtype;
  /** Force the graphs' target (default: the WebGPU-target graphs when the model has them). */
  target?: Target;
  /**
   * Tokens the KV cache holds (prompt + answer). Default: what fits the estimated GPU memory after the
   * weights, 2048–8192 (device-plan.ts defaultContext), at most the model's maximum.
   */
  maxContext?: number;
  /** Bytes of GPU memory for cached vision features (default 256 MiB). */
  featureCacheBytes?: number;
  /** Keep downloads in the browser cache (OPFS). Default true. */
  cache?: boolean;
  /** Run one tiny inference after loading so shaders are compiled before the first question. Default true. */
  warmUp?: boolean;
  /**
   * Where pixel values are made. 'auto' (default): on the GPU when its self-check passes, except on
   * fallback (software) adapters, where the CPU is faster; 'on': on the GPU whenever the self-check
   * passes; 'off': on the CPU.
   */
  gpuPreprocess?: 'auto' | 'on' | 'off';
  /**
   * At most this many crops per vision run, below what the GPU's buffers allow (default: that limit):
   * smaller runs report progress sooner and hold less memory; an image with more crops still runs whole.
   */
  maxCropsPerVisionRun?: number;
}

export interface FileProgress {
  path: string;
  bytes: number;
  done: number;
  state: 'waiting' | 'cached' | 'downloading' | 'verifying' | 'done' | 'failed';
}

export type LoadStage = 'manifest' | 'download' | 'preparing' | 'ready';

export interface LoadProgress {
  stage: LoadStage;
  /** Bytes downloaded or read from cache so far / in total (never decreases). */
  bytesDone: number;
  bytesTotal: number;
  /** Network speed over the last seconds, bytes per second (0 when reading from cache). */
  bytesPerSecond: number;
  /** Seconds left at the current speed, or undefined while unknown. */
  etaSeconds?: number;
  files: FileProgress[];
  message: string;
}

export interface LoadedModel {
  /** Cache id (stable for the same manifest). */
  id: string;
  name: string;
  dtype: Dtype;
  target: Target;
  /** Each graph's weight precision and the activation type. */
  precision: VariantPrecision;
  randomWeights: boolean;
  architecture: Manifest['architecture'];
  /** Where the weights came from: all from cache, all from the source, or some of each. */
  from: 'cache' | 'source' | 'mixed';
  /** 'opfs' when the files are cached for the next visit, 'memory' when they could not be. */
  storage: 'opfs' | 'memory' | 'none';
  maxContext: number;
  /** Context, prompt and frame caps on this GPU; checkAskLimits(shape, limits) gives the worker's verdict. */
  limits: AskLimits;
  /** KV cache kind of the decoder graph. */
  kvCache: 'static' | 'dynamic';
  timings: { totalMs: number; downloadMs: number; prepareMs: number; warmUpMs: number };
  warnings: string[];
  /** Where onnxruntime placed each graph's nodes: the CPU holds only small shape computations unless a warning says otherwise. */
  placement: GraphPlacement[];
  /** How the KV-cache size was chosen: asked for, or from the GPU memory measured free after the weights. */
  memoryPlan: ContextPlan;
  /** Where pixel values are made (LoadOptions.gpuPreprocess and the GPU's self-check). */
  preprocess: 'gpu' | 'cpu';
  /** Which family member it is and what it can be asked. */
  card: ModelCard;
  /** The GPU memory check made before the download. */
  gpuFit: GpuFitCheck;
  /** onnxruntime-web build in use: 'jspi' streams the weights to the GPU per tensor, 'asyncify' reads each graph's weight file whole. */
  ortBuild?: 'jspi' | 'asyncify';
}

/** Before a download: what the variant needs on the GPU, and what the GPU allocated (up to that). */
export interface GpuFitCheck {
  needBytes: number;
  /** Undefined when the GPU was not probed (see `skipped`). */
  allocatableBytes?: number;
  skipped?: string;
  /** When the GPU allocated less than needed: why nothing is loaded or converted, with the numbers (gpuShortfall). */
  refusal?: string;
}

export interface CachedModel {
  id: string;
  name: string;
  /** Where it was downloaded from. */
  source: string;
  /** Bytes of this model's files present in the cache. */
  bytes: number;
  savedAt: string;
  randomWeights: boolean;
}

export interface StorageInfo {
  usage: number;
  quota: number;
  /** True when the browser granted persistent storage (set by the page; workers cannot ask). */
  persisted?: boolean;
}

/** RGBA pixels, row-major, 4 bytes per pixel. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

export type ImageInput = ImageBitmap | RgbaImage;

/**
 * Visual input of a question. `key` / `keys` are optional stable identities of the pixels, filled by
 * the page: the same key must always mean the same pixels (for a video frame, e.g. the file's
 * fingerprint plus the frame's index or presentation time: `${fileKey}#${frameIndex}`). With keys the
 * worker keeps each frame's vision features on the GPU (LRU) and, when a question repeats the visual
 * input of the one before, keeps the KV cache of the shared prefix — the vision encoder then runs
 * only for frames it has not seen. Without keys every question is computed from scratch.
 */
export type AskVisual =
  | { kind: 'none' }
  /** `keys[i]` identifies `images[i]` (same length as `images` when given). */
  | { kind: 'images'; images: ImageInput[]; keys?: (string | undefined)[] }
  /** Frames of one video with their timestamps in seconds, in time order. */
  | { kind: 'video'; frames: { image: ImageInput; timestamp: number; key?: string }[] };

export interface AskRequest {
  question: string;
  visual: AskVisual;
  history?: ChatTurn[];
  /** Default 2048. */
  maxNewTokens?: number;
}

export interface StageTimings {
  preprocessMs: number;
  visionMs: number;
  prefillMs: number;
  decodeMs: number;
  promptTokens: number;
  generatedTokens: number;
  /** Prefilled tokens (prefillTokens) per second. */
  prefillTokensPerSecond: number;
  /** Generated tokens per second after the first one. */
  decodeTokensPerSecond: number;
  /** Milliseconds from the request to the first generated token. */
  timeToFirstTokenMs: number;
  /** Frames (video) or images of the request. */
  visualItems: number;
  /** Of those, how many went through the vision encoder in this request. */
  visionEncoded: number;
  /** Of those, how many had their features in the vision feature cache. */
  visionCacheHits: number;
  /** Prompt tokens whose KV cache was kept from the previous question (not prefilled again). */
  prefixReusedTokens: number;
  /** Prompt tokens the prefill actually ran over (promptTokens − prefixReusedTokens). */
  prefillTokens: number;
  /** Where this request's pixel values were made ('mixed': some batches fell back to the CPU; 'none': nothing was preprocessed). */
  preprocess: 'gpu' | 'cpu' | 'mixed' | 'none';
  /**
   * Wall time of the vision stage (pixel values and vision runs, overlapped: the next batch is made
   * while the current one runs). preprocessMs + visionMs − visionStageMs is the time the overlap hid.
   */
  visionStageMs: number;
}

export type AskEvent =
  /** During 'vision', done / total = frames (video) or images done of all, sent again after each vision run. */
  | { type: 'stage'; stage: 'preprocess' | 'vision' | 'prefill' | 'decode'; promptTokens?: number; done?: number; total?: number }
  | { type: 'token'; tokenId: number; text: string; generated: number }
  | { type: 'done'; text: string; tokens: number[]; stoppedBy: 'eos' | 'max-tokens' | 'cancel'; timings: StageTimings }
  /** The answer failed: `code` says what kind of failure, `message` says it in plain words. */
  | { type: 'error'; code: WorkerErrorCode; message: string };
