// Page side of the GPU preprocessing test (e2e/gpu-preprocess.spec.ts) and benchmark
// (tools/bench-preprocess.ts). The GPU path runs on onnxruntime-web's own device and its tensor goes
// through a real WebGPU session (pixel_values → Neg); the CPU path is the runtime's (toRgb + src/molmo2).
import { ALL_FORMATS, BlobSource, Input, VideoSampleSink } from 'mediabunny';
import { RELEASED_PROCESSOR_SETTINGS as S } from '../src/molmo2/config.ts';
import { imagePixelValues, planImage, RELEASED_GEOMETRY as G, videoFramePixelValues } from '../src/molmo2/image.ts';
import { probeCapabilities } from '../src/runtime/capabilities.ts';
import { createGpuPreprocessor, gpuItemPixels, toTensor, type SelfCheck } from '../src/runtime/gpu-preprocess-inputs.ts';
import { emulateShader, imageLayout, normalisationLut } from '../src/runtime/gpu-preprocess-layout.ts';
import type { GpuImageSource, GpuPixels, GpuPreprocessor } from '../src/runtime/gpu-preprocess.ts';
import { toRgb } from '../src/runtime/inputs.ts';
import { ortDevice, setupOrt, webgpuSessionOptions, type InferenceSession } from '../src/runtime/ort.ts';

let pre: GpuPreprocessor | undefined;
let session: InferenceSession | undefined;

export interface Diff {
  values: number;
  differing: number;
  maxAbsDiff: number;
  /** maxAbsDiff in uint8 levels (one level = 2/255 after normalisation). */
  maxLevels: number;
  methods: string[];
}

function diff(gpu: Float32Array, cpu: Float32Array, methods: string[]): Diff {
  if (gpu.length !== cpu.length) throw new Error(`GPU gave ${gpu.length} values, CPU ${cpu.length}`);
  let differing = 0;
  let max = 0;
  for (let i = 0; i < cpu.length; i++) {
    const d = Math.abs(gpu[i] - cpu[i]);
    if (d !== 0) differing++;
    if (!(d <= max)) max = d;
  }
  return { values: cpu.length, differing, maxAbsDiff: max, maxLevels: Math.round((max * 255) / 2), methods };
}

function need(): { pre: GpuPreprocessor; session: InferenceSession } {
  if (!pre || !session) throw new Error('call init() first');
  return { pre, session };
}

/** The GPU result as onnxruntime sees it: through the Neg session, back on the CPU. */
async function throughOrt(px: GpuPixels): Promise<Float32Array> {
  const { session: s } = need();
  const input = toTensor(px);
  try {
    const out = await s.run({ pixel_values: input });
    const neg = (await out.o.getData()) as Float32Array;
    out.o.dispose();
    return neg.map((v) => -v);
  } finally {
    input.dispose();
  }
}

/** A deterministic RGBA image: gradients, a few hard edges and noise. */
function rgbaImage(w: number, h: number, seed: number): ImageData {
  const data = new Uint8ClampedArray(w * h * 4);
  let s = seed >>> 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = (y * w + x) * 4;
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      data[p] = (x * 255) / Math.max(1, w - 1) + (s >>> 29);
      data[p + 1] = (y * 255) / Math.max(1, h - 1);
      data[p + 2] = ((x >> 3) + (y >> 3)) % 2 ? 230 : 20 + (s >>> 28);
      data[p + 3] = 255;
    }
  }
  return new ImageData(data, w, h);
}

const bitmapOf = (img: ImageData | VideoFrame) => createImageBitmap(img, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });

async function clipFrames(times: number[]): Promise<VideoFrame[]> {
  const file = document.querySelector<HTMLInputElement>('#clip')?.files?.[0];
  if (!file) throw new Error('choose a clip in #clip first');
  const input = new Input({ source: new BlobSource(file), formats: ALL_FORMATS });
  try {
    const track = await input.getPrimaryVideoTrack();
    if (!track) throw new Error('the clip has no video track');
    const frames: VideoFrame[] = [];
    for await (const sample of new VideoSampleSink(track).samplesAtTimestamps(times)) {
      if (!sample) throw new Error('a frame could not be decoded');
      frames.push(sample.toVideoFrame());
      sample.close();
    }
    return frames;
  } finally {
    input.dispose();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const benchPreprocess = {
  /** onnxruntime's device (through a first session), then the preprocessor and its self-check. */
  async init(graph: number[]): Promise<{ adapter: string; fallbackAdapter: boolean; selfCheck: SelfCheck }> {
    const { capabilities, adapter } = await probeCapabilities();
    if (!adapter) throw new Error(capabilities.message);
    const ort = await setupOrt(adapter);
    session = await ort.InferenceSession.create(Uint8Array.from(graph), webgpuSessionOptions());
    const made = await createGpuPreprocessor(await ortDevice(), S, G, { allowFallbackAdapter: true });
    if (!made) throw new Error('GPU preprocessing is not available on this device (see the console)');
    pre = made.pre;
    const a = capabilities.adapter;
    return { adapter: a ? `${a.vendor} ${a.architecture} ${a.description}`.trim() : '?', fallbackAdapter: Boolean(a?.isFallbackAdapter), selfCheck: made.check };
  },

  /** Whether the runtime's default options enable GPU preprocessing on this device. */
  async enabledByDefault(): Promise<boolean> {
    const made = await createGpuPreprocessor(await ortDevice(), S, G);
    made?.pre.dispose();
    return made !== undefined;
  },

  /**
   * The runtime entry point on a video request: the items asked for as a GPU tensor of the right shape,
   * and undefined (→ CPU path) when a source cannot be used (here: a closed ImageBitmap).
   */
  async itemPixels(): Promise<{ dims: readonly number[]; location: string; numCrops: number; closedGivesUndefined: boolean }> {
    const { pre: p } = need();
    const bitmaps = await Promise.all([1, 2, 3].map((k) => bitmapOf(rgbaImage(320 + k, 180, k))));
    const req = { question: 'q', visual: { kind: 'video' as const, frames: bitmaps.map((image, i) => ({ image, timestamp: i / 2 })) } };
    const got = await gpuItemPixels(p, req, [0, 2], S, G);
    if (!got) throw new Error('the GPU path gave nothing for valid frames');
    const r = { dims: got.tensor.dims, location: got.tensor.location, numCrops: got.numCrops };
    got.tensor.dispose();
    bitmaps[1].close();
    const closed = await gpuItemPixels(p, req, [1], S, G);
    for (const b of bitmaps) b.close();
    return { ...r, closedGivesUndefined: closed === undefined };
  },

  /** One image both ways: an ImageBitmap (the app's input) or plain RGBA bytes. */
  async compareImage(w: number, h: number, seed: number, as: 'bitmap' | 'rgba'): Promise<Diff & { crops: number; differingFromUnfused: number }> {
    const img = rgbaImage(w, h, seed);
    const source: GpuImageSource = as === 'bitmap' ? await bitmapOf(img) : { width: w, height: h, data: img.data };
    try {
      const d = toRgb(source);
      const cpu = imagePixelValues(d.rgb, d.width, d.height, S, G);
      const px = await need().pre.images([source], S, G);
      const gpu = await throughOrt(px);
      // The same arithmetic with a multiply and an add where the shader says fma(): what a GPU that
      // does not fuse computes.
      const unfused = new Float32Array(cpu.length);
      emulateShader(d.rgb, imageLayout(planImage(w, h, S, G), S, G), normalisationLut(S), unfused, 0, 'unfused');
      return { ...diff(gpu, cpu, px.methods), crops: px.numCrops, differingFromUnfused: diff(gpu, unfused, []).differing };
    } finally {
      if (source instanceof ImageBitmap) source.close();
    }
  },

  /** Frames of the clip in #clip as VideoFrames (GPU path) against the CPU path on their bitmaps. */
  async compareFrames(times: number[]): Promise<Diff & { width: number; height: number }> {
    const frames = await clipFrames(times);
    try {
      const cpu = new Float32Array(frames.length * 729 * 588);
      for (let i = 0; i < frames.length; i++) {
        const b = await createImageBitmap(frames[i]);
        const d = toRgb(b);
        b.close();
        cpu.set(videoFramePixelValues(d.rgb, d.width, d.height, S, G), i * 729 * 588);
      }
      const px = await need().pre.videoFrames(frames, S, G);
      return { ...diff(await throughOrt(px), cpu, px.methods), width: frames[0].displayWidth, height: frames[0].displayHeight };
    } finally {
      for (const f of frames) f.close();
    }
  },

  /**
   * Milliseconds per frame of preprocessing `n` frames of the clip, CPU path vs GPU path (the GPU
   * timed until its queue is idle), alternating over `rounds`; and the same for one image of the
   * clip's size (global view + hi-res crops).
   */
  async bench(n: number, rounds: number) {
    const { pre: p } = need();
    const frames = await clipFrames(Array.from({ length: n }, (_, i) => i * 0.5));
    const bitmaps = await Promise.all(frames.map((f) => createImageBitmap(f)));
    const [width, height] = [frames[0].displayWidth, frames[0].displayHeight];
    // The same frames as RGBA bytes (made untimed): uploading them is writeTexture only, which separates
    // the shader's time from copyExternalImageToTexture's.
    const rgba = bitmaps.map((b) => {
      const c = new OffscreenCanvas(width, height).getContext('2d')!;
      c.drawImage(b, 0, 0);
      return { width, height, data: c.getImageData(0, 0, width, height).data };
    });
    const device = p.device;
    const time = async (fn: () => Promise<unknown>) => {
      const t = performance.now();
      await fn();
      return performance.now() - t;
    };
    const gpu = async (sources: GpuImageSource[], images: boolean) => {
      const px = images ? await p.images(sources, S, G) : await p.videoFrames(sources, S, G);
      await device.queue.onSubmittedWorkDone();
      px.buffer.destroy();
      return px.methods;
    };
    const cpuFrames = async () => {
      for (const b of bitmaps) {
        const d = toRgb(b);
        videoFramePixelValues(d.rgb, d.width, d.height, S, G);
      }
    };
    const cpuImage = async () => {
      const d = toRgb(bitmaps[0]);
      imagePixelValues(d.rgb, d.width, d.height, S, G);
    };
    const r = { cpuFrame: [] as number[], gpuFrameBitmap: [] as number[], gpuFrameVideoFrame: [] as number[], gpuFrameRgba: [] as number[], cpuImage: [] as number[], gpuImage: [] as number[] };
    let videoFrameMethod = '';
    try {
      // Warm-up: shader pipelines, textures and tables of this size.
      await gpu(bitmaps, false);
      videoFrameMethod = (await gpu(frames, false))[0];
      await gpu([bitmaps[0]], true);
      await gpu(rgba, false);
      for (let k = 0; k < rounds; k++) {
        r.cpuFrame.push((await time(cpuFrames)) / n);
        r.gpuFrameBitmap.push((await time(() => gpu(bitmaps, false))) / n);
        r.gpuFrameVideoFrame.push((await time(() => gpu(frames, false))) / n);
        r.gpuFrameRgba.push((await time(() => gpu(rgba, false))) / n);
        r.cpuImage.push(await time(cpuImage));
        r.gpuImage.push(await time(() => gpu([bitmaps[0]], true)));
      }
    } finally {
      for (const b of bitmaps) b.close();
      for (const f of frames) f.close();
    }
    return {
      frames: n,
      rounds,
      width,
      height,
      imageCrops: planImage(width, height, S, G).numCrops,
      videoFrameMethod,
      ms: Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)])) as Record<keyof typeof r, number>,
    };
  },
};

declare global {
  interface Window {
    benchPreprocess: typeof benchPreprocess;
  }
}
window.benchPreprocess = benchPreprocess;
