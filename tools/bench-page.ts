// Opens one of the e2e/bench-*.html pages for a benchmark: this app's Vite dev server on a free port
// and Debian's headless Chromium with SwiftShader WebGPU, the same set-up as the browser tests.
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const root = join(import.meta.dirname, '..');

export interface BenchPage {
  page: Page;
  /** Absent for a persistent context (`profileDir`). */
  browser?: Browser;
  close(): Promise<void>;
}

/**
 * Opens `path`; `chromiumArgs` are added to the launch flags (the device check's GPU flags). With
 * `profileDir` the browser keeps its profile there (a persistent context: storage on disk with the
 * quota of a user's profile, where a fresh context's OPFS is capped far below a converted model).
 */
export async function openBenchPage(path: string, chromiumArgs: string[] = [], opts: { profileDir?: string } = {}): Promise<BenchPage> {
  const server: ViteDevServer = await createServer({
    configFile: join(root, 'vite.config.ts'),
    root,
    logLevel: 'error',
    // No HMR: an edit to any source while a benchmark runs would reload the page mid-measurement.
    server: { port: 0, strictPort: false, host: '127.0.0.1', hmr: false },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('the Vite server has no port');
  const launch = {
    executablePath: process.env.CHROME_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...chromiumArgs],
  };
  let context: BrowserContext | undefined;
  let browser: Browser | undefined;
  try {
    if (opts.profileDir) {
      context = await chromium.launchPersistentContext(opts.profileDir, launch);
    } else {
      browser = await chromium.launch(launch);
      context = await browser.newContext();
    }
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => console.error(`[page] ${e.message}`));
    await page.goto(`http://127.0.0.1:${address.port}/${path}`);
    const [b, c] = [browser, context];
    return {
      page,
      browser: b,
      async close() {
        await c.close();
        await b?.close();
        await server.close();
      },
    };
  } catch (e) {
    await context?.close();
    await browser?.close();
    await server.close();
    throw e;
  }
}

/** One line of JSON on stdout, the last line, for tools/bench.ts to collect. */
export function printResult(result: object): void {
  console.log(`BENCH_RESULT ${JSON.stringify(result)}`);
}

/** The benchmarks' 60 s 1280×720 30 fps H.264 clip in .cache/bench (written with ffmpeg once). */
export function benchClip(): string {
  const clip = join(root, '.cache', 'bench', 'sampling_720p_60s.mp4');
  if (existsSync(clip)) return clip;
  mkdirSync(join(root, '.cache', 'bench'), { recursive: true });
  console.log('writing the 60 s 720p H.264 clip …');
  // testsrc2 has motion and detail everywhere, so the encoder produces realistic P-frames.
  const r = spawnSync(
    process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg',
    ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=duration=60:size=1280x720:rate=30', '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', clip],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`ffmpeg failed to write the clip: ${r.stderr}`);
  return clip;
}
