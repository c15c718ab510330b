// `tsx tools/bench-sampling.ts [--rounds n]`: frame sampling at 2 fps over a 60 s 720p H.264 clip.
// Frames/s of the app's decode worker (framesAt in headless Chromium, WebCodecs) against ffmpeg
// extracting the same frames to raw RGB on this machine, measured alternately in one run.
import { spawn } from 'node:child_process';
import { presentedFrameIndex } from '../src/molmo2/video.ts';
import { benchClip, openBenchPage, printResult } from './bench-page.ts';

const FFMPEG = process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';
const TARGET = 0.8;

/** ffmpeg decodes the clip and writes only the selected frames as rgb24; returns ms and frames seen. */
function ffmpegExtract(clip: string, frames: number[], width: number, height: number): Promise<{ ms: number; frames: number }> {
  // A balanced sum keeps ffmpeg's expression parser within its nesting limit.
  const sum = (xs: string[]): string => (xs.length === 1 ? xs[0] : `(${sum(xs.slice(0, xs.length >> 1))}+${sum(xs.slice(xs.length >> 1))})`);
  const select = sum(frames.map((n) => `eq(n\\,${n})`));
  const t = performance.now();
  const p = spawn(FFMPEG, ['-v', 'error', '-i', clip, '-vf', `select='${select}'`, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let bytes = 0;
  let err = '';
  p.stdout.on('data', (b: Buffer) => (bytes += b.length));
  p.stderr.on('data', (b: Buffer) => (err += b));
  return new Promise((resolve, reject) =>
    p.on('close', (code) => {
      const ms = performance.now() - t;
      if (code !== 0) return reject(new Error(`ffmpeg exited ${code}: ${err}`));
      resolve({ ms, frames: bytes / (width * height * 3) });
    }),
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 3);
  const clip = benchClip();
  const bp = await openBenchPage('e2e/bench-sampling.html');
  try {
    const { page } = bp;
    await page.waitForFunction(() => 'benchSampling' in window);
    await page.setInputFiles('#clip', clip);
    const info = await page.evaluate(() => window.benchSampling.open());
    const times = await page.evaluate(() => window.benchSampling.times());
    // The frames Molmo2 samples: those presented at the sample times (what framesAt returns, too).
    const indices = times.map((t) => presentedFrameIndex(t, info.frameTimes));
    console.log(`clip: ${info.width}×${info.height} ${info.codecString}, ${info.duration.toFixed(2)} s, ${info.frameCount} frames; ${times.length} sample times (2 fps)`);

    // Warm-up of both (file cache, decoder and worker start-up), then alternate so both see the same load.
    await page.evaluate((ts) => window.benchSampling.run(ts), times);
    await ffmpegExtract(clip, indices, info.width, info.height);
    const worker: number[] = [];
    const ff: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const w = await page.evaluate((ts) => window.benchSampling.run(ts), times);
      if (w.frames !== times.length) throw new Error(`framesAt returned ${w.frames} frames for ${times.length} times`);
      worker.push((w.frames * 1000) / w.ms);
      const f = await ffmpegExtract(clip, indices, info.width, info.height);
      if (f.frames !== new Set(indices).size) throw new Error(`ffmpeg wrote ${f.frames} frames, expected ${new Set(indices).size}`);
      // Count the requested times, as framesAt does (the last time repeats no frame here, so equal).
      ff.push((times.length * 1000) / f.ms);
      console.log(`  round ${r + 1}: decode worker ${worker[r].toFixed(1)} frames/s, ffmpeg ${ff[r].toFixed(1)} frames/s`);
    }
    const wFps = median(worker);
    const fFps = median(ff);
    const ratio = wFps / fFps;
    console.log('\nframe sampling benchmark (2 fps over a 60 s 720p H.264 clip, median of rounds)');
    console.log(`  decode worker framesAt  ${wFps.toFixed(1)} frames/s (ImageBitmaps at 1280×720)`);
    console.log(`  ffmpeg → raw RGB        ${fFps.toFixed(1)} frames/s`);
    console.log(`  ratio worker / ffmpeg   ${ratio.toFixed(2)}   (target ≥ ${TARGET})`);
    printResult({
      name: 'sampling',
      figures: { workerFps: wFps, ffmpegFps: fFps, frames: times.length, rounds },
      targets: [{ name: 'decode worker frames/s ÷ ffmpeg frames/s (2 fps, 60 s 720p H.264)', value: ratio, target: TARGET, op: '>=' }],
    });
  } finally {
    await bp.close();
  }
}

await main();
