// What the batch tool (`npm run batch`) passes between its parts: the frames sampled from one video,
// the question as one backend call, and the two backends (local onnxruntime-node, or a vLLM /
// OpenAI-compatible server) behind one interface.

/** One frame shown to the model, decoded from the video at a sampled time. */
export interface SampledFrame {
  /** Absolute video time (s) that was sampled. */
  timeS: number;
  /** 0-based index of the decoded frame presented at timeS (src/molmo2/video.ts presentedFrameIndex). */
  frame: number;
  width: number;
  height: number;
  /** RGBA bytes (width·height·4), when the backend asked for 'rgba'. */
  rgba?: Uint8Array;
  /** A JPEG file's bytes, when the backend asked for 'jpeg'. */
  jpeg?: Uint8Array;
}

/** One question about one video's sampled frames, as a backend receives it. */
export interface BackendQuestion {
  question: string;
  /** 'video': the frames are one clip whose t = 0 is clipStartS; 'images': separate images, in order. */
  mode: 'video' | 'images';
  frames: SampledFrame[];
  /** Video time (s) of the clip's t = 0: the model sees frame k at timestamp frames[k].timeS − clipStartS. */
  clipStartS: number;
  maxNewTokens: number;
  /** Aborts the call (the batch was interrupted). */
  signal?: AbortSignal;
}

export interface BackendAnswer {
  /** The model's answer text exactly as generated (parsed later by src/molmo2/answer.ts). */
  text: string;
  /** Timing figures in ms (e.g. preprocessMs, prefillMs, decodeMs, requestMs), copied into the result file. */
  timingMs: Record<string, number>;
}

export interface BatchBackend {
  readonly kind: 'local' | 'vllm';
  /** What the result files name as the model. */
  readonly model: { id: string; dtype: string };
  /** The pixel form this backend wants the frames in. */
  readonly frameFormat: 'rgba' | 'jpeg';
  /** How many questions may be in flight at once (the batch runs this many videos concurrently). */
  readonly concurrency: number;
  ask(q: BackendQuestion): Promise<BackendAnswer>;
  close(): Promise<void>;
}
