// `npm run bench:hub-convert [-- --size tiny|4b] [--dtype q4] [--browser-only]`: getting a model from the Hub, both
// ways, on one random checkpoint served by the local Hub server on 127.0.0.1 (tools/lib/hub-server.ts,
// the Hub's resolve layout with Range requests): `npm run convert`'s streaming conversion (no shard on
// disk), and the browser's conversion through the app's model panel in headless Debian Chromium (the
// conversion worker reads Range requests, encodes on one thread and writes OPFS). Prints per way: time,
// MB/s of checkpoint read, bytes written, peak memory (the Node process; the Chromium renderer that
// holds the page and its workers, against its resident size before), and whether the two ways wrote
// the same files (SHA-256 of every file). `tiny` is make-tiny's default checkpoint; `4b` is the
// published Molmo2-4B widths and depths (BF16 shards, shared with bench:full-size and bench:convert).
// On SwiftShader the browser's GPU is not used: conversion is CPU work, so these times are a user's.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dtype, Manifest } from '../src/molmo2/manifest.ts';
import { convertCheckpoint } from './lib/converter.ts';
import { HubServer } from './lib/hub-server.ts';
import { chromiumRss, peakRss, sampleChromiumRss } from './lib/process-memory.ts';
import { makeTinyCheckpoint } from './lib/tiny-checkpoint.ts';
import { openBenchPage, printResult, root } from './bench-page.ts';

const option = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : (process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
};
const SIZE = option('size', 'tiny') as 'tiny' | '4b';
const DTYPE = option('dtype', 'q4') as Dtype;
if (!['tiny', '4b'].includes(SIZE)) throw new Error(`--size tiny or 4b, not ${SIZE}`);
const CHECKPOINT = join(root, '.cache', SIZE === 'tiny' ? 'bench-hub-tiny-checkpoint' : '4b-checkpoint');
const NODE_OUT = join(root, '.cache', `bench-hub-${SIZE}-${DTYPE}-node`);
const REPO = `bench/${SIZE}`;
const MB = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function shardBytes(): number {
  const index = JSON.parse(readFileSync(join(CHECKPOINT, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  return [...new Set(Object.values(index.weight_map))].reduce((sum, f) => sum + statSync(join(CHECKPOINT, f)).size, 0);
}

async function main() {
  if (!existsSync(join(CHECKPOINT, 'config.json'))) {
    console.log(`writing the ${SIZE} random checkpoint …`);
    await makeTinyCheckpoint({ outDir: CHECKPOINT, seed: 0, size: SIZE === 'tiny' ? 'tiny' : '4b', log: (m) => console.log(`  ${m}`) });
  }
  const weights = shardBytes();
  const hub = new HubServer({ [REPO]: { dir: CHECKPOINT, commit: 'b0b0000000000000000000000000000000000001', redirectWeights: true } });
  await hub.start();
  const served = () => hub.requests.reduce((sum, r) => sum + r.bodyBytes, 0);
  console.log(`checkpoint ${REPO}: ${MB(weights)} of safetensors; ${DTYPE}/webgpu`);

  // Node: npm run convert -- <repo>, streaming (HF_ENDPOINT = the local Hub). `--browser-only` keeps
  // an earlier run's output to compare with and does not measure Node again.
  const browserOnly = process.argv.includes('--browser-only') && existsSync(join(NODE_OUT, 'manifest.json'));
  if (browserOnly) console.log('npm run convert: not measured (--browser-only); comparing with its earlier output');
  else await rm(NODE_OUT, { recursive: true, force: true });
  const cacheDir = join(root, '.cache', 'bench-hub-cache');
  await rm(cacheDir, { recursive: true, force: true });
  let nodePeak = process.memoryUsage().rss;
  const nodeTimer = setInterval(() => (nodePeak = Math.max(nodePeak, process.memoryUsage().rss)), 200);
  const nodeStart = performance.now();
  const servedBefore = served();
  if (!browserOnly) await convertCheckpoint({ source: REPO, out: NODE_OUT, dtypes: [DTYPE], targets: ['webgpu'], cacheDir, hub: { endpoint: hub.url } });
  const nodeMs = performance.now() - nodeStart;
  clearInterval(nodeTimer);
  const nodeRead = served() - servedBefore;
  const nodeManifest = JSON.parse(readFileSync(join(NODE_OUT, 'manifest.json'), 'utf8')) as Manifest;
  const outBytes = nodeManifest.files.reduce((sum, f) => sum + f.bytes, 0);
  if (!browserOnly) console.log(`npm run convert (streaming): ${s(nodeMs)}, read ${MB(nodeRead)} (${(nodeRead / 1e6 / (nodeMs / 1000)).toFixed(0)} MB/s), wrote ${MB(outBytes)}, peak RSS ${MB(nodePeak)}`);

  // Browser: the model panel's "Convert in this browser".
  const profile = join(root, '.cache', 'bench-hub-profile');
  await rm(profile, { recursive: true, force: true });
  const bench = await openBenchPage('', [], { profileDir: profile });
  try {
    const { page } = bench;
    await page.waitForFunction(() => Boolean(navigator.serviceWorker?.controller), undefined, { timeout: 60_000 });
    const rendererBefore = chromiumRss().renderer;
    const panel = page.getByTestId('hub-convert');
    await panel.locator('summary').first().click();
    await panel.getByText('Hub address and access token').click();
    await panel.getByLabel('Hub address').fill(hub.url);
    await panel.getByLabel('Hub repository').fill(REPO);
    await panel.getByLabel('Weights').selectOption(DTYPE);
    await panel.getByRole('button', { name: 'Check' }).click();
    await panel.getByTestId('convert-plan').waitFor({ timeout: 120_000 });
    const sampler = sampleChromiumRss(250);
    const browserStart = performance.now();
    const readBefore = served();
    await panel.getByTestId('convert-plan').getByRole('button', { name: 'Convert in this browser' }).click();
    await panel.getByTestId('convert-done').or(panel.getByTestId('convert-error')).waitFor({ timeout: 3 * 3600_000 });
    const browserMs = performance.now() - browserStart;
    const peaks = peakRss(sampler.stop());
    if (await panel.getByTestId('convert-error').isVisible()) throw new Error(`browser conversion failed: ${await panel.getByTestId('convert-error').textContent()}`);
    const browserRead = served() - readBefore;
    const manifest = await page.evaluate(async () => {
      const models = await (await (await navigator.storage.getDirectory()).getDirectoryHandle('molmo2-web')).getDirectoryHandle('models');
      for await (const [, h] of (models as unknown as { entries(): AsyncIterable<[string, FileSystemFileHandle]> }).entries()) return (JSON.parse(await (await h.getFile()).text()) as { manifest: Manifest }).manifest;
      return undefined;
    });
    if (!manifest) throw new Error('the browser conversion left no model in the cache');
    const node = new Map(nodeManifest.files.map((f) => [f.path, f.sha256]));
    const differing = manifest.files.filter((f) => node.get(f.path) !== f.sha256).map((f) => f.path);
    const rise = peaks.renderer - rendererBefore;
    console.log(
      `browser conversion: ${s(browserMs)}, read ${MB(browserRead)} (${(browserRead / 1e6 / (browserMs / 1000)).toFixed(0)} MB/s), wrote ${MB(manifest.files.reduce((sum, f) => sum + f.bytes, 0))} to OPFS, ` +
        `renderer peak RSS ${MB(peaks.renderer)} (+${MB(rise)} over the idle page)`,
    );
    console.log(`same files as npm run convert: ${differing.length === 0 ? `yes (${manifest.files.length} files, SHA-256)` : `NO: ${differing.join(', ')}`}`);
    // Conversion holds a few blocks of weights, not the model: the renderer must not grow with it.
    console.log(`  browser conversion renderer rise (${SIZE})  ${(rise / 2 ** 20).toFixed(0)} MiB  (target < 1024 MiB)`);
    console.log(`  files differing from npm run convert (${SIZE})  ${differing.length}  (target ≤ 0)`);
    printResult({
      size: SIZE,
      dtype: DTYPE,
      checkpointBytes: weights,
      outputBytes: outBytes,
      node: browserOnly ? undefined : { seconds: nodeMs / 1000, readBytes: nodeRead, peakRss: nodePeak },
      browser: { seconds: browserMs / 1000, readBytes: browserRead, rendererPeak: peaks.renderer, rendererRise: rise },
      sameFiles: differing.length === 0,
    });
    if (differing.length) process.exitCode = 1;
  } finally {
    await bench.close();
    await hub.stop();
    await rm(profile, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
