// `tsx tools/bench-preprocess.ts [--frames n] [--rounds n]`: Molmo2 preprocessing per frame, GPU path
// (src/runtime/gpu-preprocess.ts on onnxruntime-web's device) vs the CPU path (toRgb + src/molmo2),
// measured alternately in one headless Chromium run over frames of the 720p benchmark clip.
import { negGraph } from '../e2e/bench-graphs.ts';
import { benchClip, openBenchPage, printResult } from './bench-page.ts';

const TARGET = 3;

async function main() {
  const arg = (name: string, d: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? d);
  const frames = arg('frames', 8);
  const rounds = arg('rounds', 3);
  const clip = benchClip();
  const bp = await openBenchPage('e2e/bench-preprocess.html');
  try {
    const { page } = bp;
    await page.waitForFunction(() => 'benchPreprocess' in window);
    const init = await page.evaluate((g) => window.benchPreprocess.init(g), Array.from(negGraph()));
    await page.setInputFiles('#clip', clip);
    const r = await page.evaluate(([n, k]) => window.benchPreprocess.bench(n, k), [frames, rounds] as const);
    const ratio = r.ms.cpuFrame / r.ms.gpuFrameBitmap;
    const f = (ms: number) => `${ms.toFixed(2)} ms`.padStart(10);
    console.log(`\npreprocessing benchmark (${r.width}×${r.height} frames → one 378² crop; medians of ${r.rounds} rounds of ${r.frames} frames)`);
    console.log(`  adapter                          ${init.adapter}${init.fallbackAdapter ? ' (fallback adapter: the "GPU" runs on the CPU)' : ''}`);
    console.log(`  self-check vs CPU                ${init.selfCheck.differing} differing values (max ${init.selfCheck.maxAbsDiff.toFixed(4)})`);
    console.log(`  CPU path per frame               ${f(r.ms.cpuFrame)}  (ImageBitmap → canvas RGBA → resize → normalise)`);
    console.log(`  GPU path per frame, ImageBitmap  ${f(r.ms.gpuFrameBitmap)}  (copyExternalImageToTexture → WGSL, until the queue is idle)`);
    console.log(`  GPU path per frame, VideoFrame   ${f(r.ms.gpuFrameVideoFrame)}  (via ${r.videoFrameMethod})`);
    console.log(`  GPU path per frame, RGBA bytes   ${f(r.ms.gpuFrameRgba)}  (writeTexture → WGSL: the shader's share)`);
    console.log(`  ratio CPU / GPU (ImageBitmap)    ${ratio.toFixed(2)}   (target ≥ ${TARGET} on a real GPU)`);
    console.log(`  one ${r.width}×${r.height} image (${r.imageCrops} crops): CPU ${r.ms.cpuImage.toFixed(1)} ms, GPU ${r.ms.gpuImage.toFixed(1)} ms`);
    printResult({
      name: 'preprocess',
      adapter: init.adapter,
      figures: { ...r.ms, frames: r.frames, rounds: r.rounds, videoFrameMethod: r.videoFrameMethod, selfCheckDiffering: init.selfCheck.differing },
      targets: [
        {
          name: `preprocessing per frame, CPU ms ÷ GPU ms (${r.width}×${r.height} → 378²)`,
          value: ratio,
          target: TARGET,
          op: '>=',
          realGpuOnly: true,
          onRealGpu: !init.fallbackAdapter,
        },
      ],
    });
  } finally {
    await bp.close();
  }
}

await main();
