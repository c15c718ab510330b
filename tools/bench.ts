// `npm run bench [-- --only a,b] [-- --skip a,b]`: runs every benchmark as its own child process, prints
// its figures as they come, and regenerates bench/REPORT.md with the machine, the adapter and each
// target (measured value, met / not met, what would make it fail). A benchmark that fails or does not
// exist yet is reported as such, its targets pending. BENCH_ONLY / BENCH_SKIP do the same as the
// flags; `--only sampling,preprocess` skips the slow ones.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseResultLine, parseTargetLines, renderReport, type BenchResult, type Machine } from './bench-report.ts';

const root = join(import.meta.dirname, '..');

interface Bench {
  name: string;
  what: string;
  /** An npm script of package.json, or a tools/ file run with tsx. */
  npm?: string;
  file?: string;
}

const BENCHES: Bench[] = [
  { name: 'convert', what: 'conversion throughput vs plain streaming reads of the same shards, converter peak RSS (slow: writes a 5.7 GB checkpoint once)', npm: 'bench:convert' },
  { name: 'browser', what: 'in-browser runtime: follow-up vs from-scratch question on cached features (slow)', npm: 'bench:browser' },
  { name: 'sampling', what: 'decode worker frames/s vs ffmpeg, 2 fps over a 60 s 720p H.264 clip', file: 'tools/bench-sampling.ts' },
  { name: 'preprocess', what: 'preprocessing per frame, GPU path vs CPU path', file: 'tools/bench-preprocess.ts' },
  { name: 'quant', what: 'logit error of each quantized variant (vs the reference on its own weights and vs fp32), MatMulNBits accuracy_level 0 vs 4 (about 10 min)', npm: 'bench:quant' },
  { name: 'full-size', what: 'Molmo2-4B widths and depths (random weights, q4): load from the folder (how the weights are read, Chromium memory against the largest file), a text-only and a one-frame question (slow: tens of minutes on SwiftShader, writes a 10 GB checkpoint once)', npm: 'bench:full-size' },
  { name: 'dispatch', what: 'GPU work of one decode step (dispatches per kernel, uploads, copies, read-backs, submits), per layer and outside, against the anchor design; tiny and Molmo2-4B widths (about 25 min on SwiftShader)', npm: 'bench:dispatch' },
  { name: 'hub-convert', what: 'a Hub checkpoint (local Hub server) converted by npm run convert (streaming) and in the browser: time, MB/s, memory, same files (tiny; `npm run bench:hub-convert -- --size 4b` for the full size)', npm: 'bench:hub-convert' },
  { name: 'long-video', what: 'GPU memory and time of one cold prefill from 2k to 32k tokens (384 frames) on a tiny 2-layer checkpoint: chunked prefill attention beside one mask for the whole prompt (slow: about 1 h on SwiftShader)', npm: 'bench:long-video' },
  { name: 'demo', what: 'the demo model (trained on synthetic shapes) on test scenes: point hit rate, count accuracy, track error for the fp32 reference and the q4 / fp32 variants in the browser runtime, and that runtime\'s speed', npm: 'bench:demo' },
  { name: 'quant-webgpu', what: 'the q4 variant on WebGPU at MatMulNBits accuracy_level 0 and 4 against the reference on its stored weights (slow on SwiftShader)', npm: 'bench:quant-webgpu' },
];

function listArg(flag: string, env: string): string[] | undefined {
  const i = process.argv.indexOf(flag);
  const v = i >= 0 ? process.argv[i + 1] : process.argv.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1) ?? process.env[env];
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
}

/** The tools/ file an npm script runs, so a missing one is reported as "does not exist yet". */
function scriptFile(script: string): string | undefined {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const cmd = pkg.scripts?.[script];
  if (!cmd) return undefined;
  return /(\S+\.ts)\b/.exec(cmd)?.[1] ?? '';
}

/** Why a benchmark cannot run here, or undefined when it can. */
function missing(b: Bench): string | undefined {
  const file = b.file ?? (b.npm ? scriptFile(b.npm) : undefined);
  if (file === undefined) return `no npm script ${b.npm} in package.json`;
  if (file && !existsSync(join(root, file))) return `${file} does not exist yet`;
  return undefined;
}

function run(b: Bench, timeoutS: number): Promise<BenchResult> {
  const base = { name: b.name, targets: [], at: new Date().toISOString() };
  const why = missing(b);
  if (why) return Promise.resolve({ ...base, status: 'missing', note: why });
  const [cmd, args] = b.npm ? ['npm', ['run', '-s', b.npm]] : [process.execPath, ['--import', 'tsx', join(root, b.file!)]];
  console.log(`\n━━ ${b.name}: ${b.what}\n`);
  const started = performance.now();
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let text = '';
    const take = (chunk: Buffer, to: NodeJS.WriteStream) => {
      const s = chunk.toString();
      text += s;
      for (const line of s.split(/(?<=\n)/)) if (!line.startsWith('BENCH_RESULT ') && !/^npm warn/i.test(line)) to.write(line);
    };
    p.stdout.on('data', (c: Buffer) => take(c, process.stdout));
    p.stderr.on('data', (c: Buffer) => take(c, process.stderr));
    const timer = setTimeout(() => p.kill('SIGTERM'), timeoutS * 1000);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      const json = parseResultLine(text);
      const output = text
        .split('\n')
        .filter((l) => !l.startsWith('BENCH_RESULT ') && !/^npm warn/i.test(l))
        .slice(-40)
        .join('\n');
      const targets = json?.targets ?? parseTargetLines(text);
      const failed = code !== 0;
      const note = failed ? (signal ? `stopped after ${timeoutS} s (${signal})` : `exited with status ${code}`) : undefined;
      resolve({ ...base, status: failed ? 'failed' : 'ok', note, seconds, adapter: json?.adapter, figures: json?.figures, targets: failed ? [] : targets, output });
    });
    p.on('error', (e) => resolve({ ...base, status: 'failed', note: e.message, seconds: (performance.now() - started) / 1000 }));
  });
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0].trim() : 'not found';
}

function machine(load: number): Machine {
  const osRelease = existsSync('/etc/os-release') ? /PRETTY_NAME="?([^"\n]+)/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] : undefined;
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).stdout.trim() ? ' + uncommitted changes' : '';
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism?.() ?? os.cpus().length,
    ramGiB: os.totalmem() / 2 ** 30,
    os: `${osRelease ?? os.type()} (${os.type()} ${os.release()}, ${os.arch()})`,
    node: process.version,
    chromium: firstLine(process.env.CHROME_PATH ?? '/usr/bin/chromium', ['--version']),
    ffmpeg: firstLine(process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg', ['-version']).replace(/ Copyright.*/, ''),
    commit: firstLine('git', ['-C', root, 'rev-parse', '--short', 'HEAD']) + dirty,
    load,
  };
}

async function main() {
  const only = listArg('--only', 'BENCH_ONLY');
  const skip = listArg('--skip', 'BENCH_SKIP') ?? [];
  const unknown = [...(only ?? []), ...skip].filter((n) => !BENCHES.some((b) => b.name === n));
  if (unknown.length) throw new Error(`unknown benchmark(s) ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}`);
  const timeoutS = Number(process.env.BENCH_TIMEOUT_S ?? 3600);
  const outDir = join(root, 'bench', 'out');
  const lastPath = join(outDir, 'last-results.json');
  const last: Record<string, BenchResult> = existsSync(lastPath) ? JSON.parse(readFileSync(lastPath, 'utf8')) : {};

  const load = os.loadavg()[0];
  const results: BenchResult[] = [];
  for (const b of BENCHES) {
    if ((only && !only.includes(b.name)) || skip.includes(b.name)) {
      // Keep the figures of an earlier run, marked as such.
      const prev = last[b.name];
      const why = missing(b);
      if (why) results.push({ name: b.name, status: 'missing', note: why, targets: [] });
      else results.push(prev ? { ...prev, status: 'skipped', note: `skipped in this run; figures from ${prev.at}` } : { name: b.name, status: 'skipped', note: 'skipped in this run', targets: [] });
      continue;
    }
    const r = await run(b, timeoutS);
    if (r.status !== 'ok') console.log(`\n${b.name}: ${r.status}${r.note ? ` (${r.note})` : ''}`);
    results.push(r);
    if (r.status === 'ok') last[b.name] = r;
  }

  mkdirSync(outDir, { recursive: true });
  writeFileSync(lastPath, JSON.stringify(last, null, 2));
  const command = ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');
  writeFileSync(join(root, 'bench', 'REPORT.md'), renderReport(machine(load), results, new Date().toISOString(), command) + '\n');

  console.log('\n━━ summary\n');
  for (const r of results) {
    const t = r.targets.map((t) => `${t.name}: ${t.value.toFixed(2)} (target ${t.op} ${t.target})`).join('; ');
    console.log(`  ${r.name.padEnd(11)} ${r.status.padEnd(8)} ${t || r.note || ''}`);
  }
  console.log('\nwrote bench/REPORT.md');
}

await main();
