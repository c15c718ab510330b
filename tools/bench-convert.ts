// `npm run bench:convert`: converts a synthetic checkpoint with the real widths of Molmo2-4B (2 decoder
// layers) to q4f16 and prints, measured in one run: MB/s of safetensors processed by the converter,
// MB/s of reading the same files alone (every tensor through the checkpoint reader, the target's
// baseline), their ratio, and the converter's peak RSS; then, for context, MB/s of streaming the
// shards through one reused buffer (page-cache copy speed, no allocation) and where the converter's
// time went (encoder threads: read, decode, encode; main thread: hashing, writing).
// Each phase runs in its own process so its peak RSS is its own.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { convertCheckpoint, type ConvertProfile } from './lib/converter.ts';
import { readCheckpointFolder, SafetensorsCheckpoint } from './lib/checkpoint.ts';
import { makeTinyCheckpoint } from './lib/tiny-checkpoint.ts';

const root = join(import.meta.dirname, '..');
const checkpointDir = join(root, '.cache', 'bench-checkpoint');
const outDir = join(root, '.cache', 'bench-converted');

interface PhaseResult {
  bytes: number;
  seconds: number;
  peakRssMiB: number;
  profile?: ConvertProfile;
}

async function readPhase(): Promise<PhaseResult> {
  const folder = await readCheckpointFolder(checkpointDir);
  const weights = await SafetensorsCheckpoint.open(folder);
  const started = performance.now();
  let bytes = 0;
  for (const name of weights.names()) bytes += (await weights.read(name)).byteLength;
  await weights.close();
  return { bytes, seconds: (performance.now() - started) / 1000, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
}

/** The shards read start to end through one 16 MiB buffer. */
async function streamPhase(): Promise<PhaseResult> {
  const folder = await readCheckpointFolder(checkpointDir);
  const buffer = new Uint8Array(16 << 20);
  const started = performance.now();
  let bytes = 0;
  for (const shard of folder.shards) {
    const file = await open(join(checkpointDir, shard), 'r');
    try {
      for (let n; (n = (await file.read(buffer, 0, buffer.byteLength, null)).bytesRead) > 0; ) bytes += n;
    } finally {
      await file.close();
    }
  }
  return { bytes, seconds: (performance.now() - started) / 1000, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
}

async function convertPhase(): Promise<PhaseResult> {
  const folder = await readCheckpointFolder(checkpointDir);
  const bytes = folder.index ? Number(folder.index.metadata?.total_size ?? 0) : 0;
  await rm(outDir, { recursive: true, force: true });
  const started = performance.now();
  const { profile } = await convertCheckpoint({ source: checkpointDir, out: outDir, dtypes: ['q4f16'], targets: ['webgpu'], log: () => {} });
  return { bytes, seconds: (performance.now() - started) / 1000, peakRssMiB: process.resourceUsage().maxRSS / 1024, profile };
}

function runPhase(phase: string): PhaseResult {
  const res = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'bench-convert.ts'), `--phase=${phase}`], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  if (res.status !== 0) throw new Error(`${phase} phase failed (exit ${res.status})`);
  return JSON.parse(res.stdout.trim().split('\n').at(-1)!) as PhaseResult;
}

async function main() {
  const phase = process.argv.find((a) => a.startsWith('--phase='))?.slice(8);
  if (phase === 'read') return console.log(JSON.stringify(await readPhase()));
  if (phase === 'stream') return console.log(JSON.stringify(await streamPhase()));
  if (phase === 'convert') return console.log(JSON.stringify(await convertPhase()));

  if (!existsSync(join(checkpointDir, 'model.safetensors.index.json'))) {
    console.log('writing the benchmark checkpoint (Molmo2-4B widths, 2 decoder layers; ~5.7 GB) …');
    await makeTinyCheckpoint({ outDir: checkpointDir, size: 'bench', seed: 0 });
  }
  // Read once untimed so both timed phases see the same (warm) page cache.
  runPhase('read');
  const read = runPhase('read');
  const convert = runPhase('convert');
  const stream = runPhase('stream');
  const mbps = (r: PhaseResult) => r.bytes / 1e6 / r.seconds;
  console.log('\nconversion benchmark (q4f16, webgpu target, Molmo2-4B widths with 2 decoder layers)');
  console.log(`  safetensors size        ${(convert.bytes / 1e9).toFixed(2)} GB`);
  console.log(`  read alone              ${mbps(read).toFixed(0)} MB/s (${read.seconds.toFixed(1)} s, peak RSS ${read.peakRssMiB.toFixed(0)} MiB)`);
  console.log(`  convert                 ${mbps(convert).toFixed(0)} MB/s (${convert.seconds.toFixed(1)} s)`);
  console.log(`  ratio convert / read    ${(mbps(convert) / mbps(read)).toFixed(2)}   (target ≥ 0.5)`);
  console.log(`  converter peak RSS      ${convert.peakRssMiB.toFixed(0)} MiB   (target < 2048 MiB)`);
  console.log(`  for context: streaming the shards through one 16 MiB buffer ${mbps(stream).toFixed(0)} MB/s (page cache, no allocation)`);
  const p = convert.profile;
  if (p) {
    const e = p.encoder;
    const busy = e.readS + e.decodeS + e.encodeS;
    console.log(`  where the time went (${e.threads} encoder threads, ${e.jobs} jobs):`);
    console.log(`    threads: read ${e.readS.toFixed(1)} s, bf16/f16 decode ${e.decodeS.toFixed(1)} s, encode (int4 / fp16) ${e.encodeS.toFixed(1)} s  (${((100 * busy) / (e.threads * p.seconds)).toFixed(0)}% busy; idle between jobs ${e.idleS.toFixed(1)} s)`);
    console.log(`    main:    sha256 ${p.output.hashS.toFixed(1)} s, writing ${p.output.writeS.toFixed(1)} s (${(p.output.bytes / 1e9).toFixed(2)} GB); manifest ${p.manifestS.toFixed(1)} s`);
  }
}

await main();
