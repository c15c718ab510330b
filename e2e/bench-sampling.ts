// Page side of the sampling benchmark (tools/bench-sampling.ts): opens the clip chosen in #clip in the
// app's real decode worker and times framesAt over Molmo2's 2 fps sample times.
import * as Comlink from 'comlink';
import type { DecodeApi, VideoInfo } from '../workers/decode-api.ts';
import { sampleTimes } from '../src/molmo2/video.ts';

let api: Comlink.Remote<DecodeApi> | undefined;
let info: VideoInfo | undefined;

const benchSampling = {
  async open(): Promise<VideoInfo> {
    const file = document.querySelector<HTMLInputElement>('#clip')?.files?.[0];
    if (!file) throw new Error('choose a clip in #clip first');
    api ??= Comlink.wrap<DecodeApi>(new Worker(new URL('../workers/decode.worker.ts', import.meta.url), { type: 'module' }));
    info = await api.open(file);
    return info;
  },

  /** 2 fps sample times over the whole clip, as the app samples a range (frame cap off). */
  times(): number[] {
    if (!info) throw new Error('open a clip first');
    return sampleTimes(info.duration, { maxFps: 2, maxFrames: 100_000 });
  },

  /** One framesAt call over `times`: wall milliseconds and the frames that came back. */
  async run(times: number[]): Promise<{ ms: number; frames: number; width: number; height: number }> {
    if (!api) throw new Error('open a clip first');
    const t = performance.now();
    const bitmaps = await api.framesAt(times);
    const ms = performance.now() - t;
    const { width, height } = bitmaps[0];
    for (const b of bitmaps) b.close();
    return { ms, frames: bitmaps.length, width, height };
  },
};

declare global {
  interface Window {
    benchSampling: typeof benchSampling;
  }
}
window.benchSampling = benchSampling;
