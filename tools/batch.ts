// `npm run batch -- <folder|files…> --question "Track the red car" [--range a-b] [--max-frames n]
// [--out results/] [--export csv,cvat,coco,mot] [--model <converted folder> | --server <url> --model <id>]`
// The app's question over many videos, on this machine (onnxruntime-node) or on a vLLM server.
import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MAX_NEW_TOKENS } from '../src/molmo2/config.ts';
import type { Dtype } from '../src/molmo2/manifest.ts';
import { formatTime } from '../src/molmo2/video.ts';
import { parseExports, parseRange, positiveInt, UsageError } from './batch/arguments.ts';
import { runBatch, type BatchProgress } from './batch/run-batch.ts';
import type { BatchBackend } from './batch/types.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const APP = (() => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
})();

const USAGE = `npm run batch -- <videos or folders…> --question "…" [options]

  -q, --question TEXT     the question asked about every video (required)
  --range A-B             only this part of each video, in seconds or m:ss (e.g. 0:05-0:20)
  --max-frames N          frames sampled per video, at most 2 per second (default 64; Molmo2's own budget is 384)
  --max-new-tokens N      answer length limit (default ${DEFAULT_MAX_NEW_TOKENS})
  --out DIR               where the result files go (default results/)
  --export LIST           also write csv,cvat,coco,mot (or "all") beside each result
  --model PATH|ID         local: a converted model folder (default: the only one in public/models/);
                          with --server: the model id the server serves, e.g. allenai/Molmo2-8B
  --dtype q4|q4f16|fp16|fp32   local: which variant of the folder to run
  --provider NAME         local: onnxruntime-node execution provider to try first, e.g. cuda or dml
                          (needs an onnxruntime-node build that has it; the CPU takes what it cannot)
  --server URL            answer on a vLLM / OpenAI-compatible server, e.g. http://gpu-box:8000/v1
  --concurrency N         server: questions in flight at once (default 4)
  --timeout S             server: seconds before a request is retried (default 120)
  --retries N             server: retries of a failed request (default 4)

Finished videos are skipped when the same command runs again; Ctrl-C stops cleanly.`;

/** The one converted model in public/models/, for a local batch without --model. */
async function defaultModelFolder(): Promise<string> {
  const dir = join(ROOT, 'public', 'models');
  const names = await readdir(dir).catch(() => [] as string[]);
  const models: string[] = [];
  for (const n of names) if (await stat(join(dir, n, 'manifest.json')).catch(() => undefined)) models.push(join(dir, n));
  if (models.length === 1) return models[0];
  throw new UsageError(
    models.length === 0
      ? 'no converted model: run `npm start` once (it builds the demo model), `npm run convert -- <checkpoint>`, or pass --model <folder>'
      : `public/models/ has ${models.length} models; choose one with --model (${models.map((m) => m.split('/').pop()).join(', ')})`,
  );
}

async function openBackend(v: Record<string, string | boolean | undefined>, log: (m: string) => void): Promise<BatchBackend> {
  const model = v.model as string | undefined;
  // Each backend is imported only when chosen: the local one loads onnxruntime-node's native library.
  if (v.server) {
    for (const name of ['dtype', 'provider']) if (v[name] !== undefined) throw new UsageError(`--${name} applies to a local model only; the server runs its own`);
    const { openOpenAiBackend } = await import('./batch/openai-backend.ts');
    if (!model) throw new UsageError('--server needs --model: the model id the server serves, e.g. allenai/Molmo2-8B');
    return openOpenAiBackend({
      server: v.server as string,
      model,
      concurrency: positiveInt('concurrency', v.concurrency as string | undefined, 4, 256),
      timeoutMs: positiveInt('timeout', v.timeout as string | undefined, 120, 86_400) * 1000,
      retries: v.retries === undefined ? undefined : Number(v.retries),
      log,
    });
  }
  for (const name of ['concurrency', 'timeout', 'retries']) if (v[name] !== undefined) throw new UsageError(`--${name} applies to --server only`);
  const { openLocalBackend } = await import('./batch/local-backend.ts');
  const provider = v.provider as string | undefined;
  return openLocalBackend(model ?? (await defaultModelFolder()), {
    dtype: v.dtype as Dtype | undefined,
    log,
    ...(provider && provider !== 'cpu' ? { executionProviders: [provider, 'cpu'] } : {}),
  });
}

function duration(seconds: number): string {
  return formatTime(seconds).replace(/\.\d+$/, '');
}

/** One status line: a bar on a terminal (rewritten in place), a line per event otherwise. */
function progressPrinter(): (p: BatchProgress) => void {
  const tty = process.stderr.isTTY;
  return (p) => {
    const finished = p.done + p.skipped + p.failed;
    const width = 24;
    const filled = p.total ? Math.round((finished / p.total) * width) : width;
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    const eta = p.etaSeconds === undefined ? '' : ` · about ${duration(p.etaSeconds)} left`;
    const line = `${bar} ${finished}/${p.total} videos (${p.done} answered, ${p.skipped} earlier, ${p.failed} failed)${eta}${p.active.length ? ` · now: ${p.active.join(', ')}` : ''}`;
    if (tty) process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 120) - 1)}`);
    else if (p.event) process.stderr.write(`${p.event} · ${line}\n`);
  };
}

async function main(): Promise<number> {
  const { values: v, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      question: { type: 'string', short: 'q' },
      range: { type: 'string' },
      'max-frames': { type: 'string' },
      'max-new-tokens': { type: 'string' },
      out: { type: 'string' },
      export: { type: 'string' },
      model: { type: 'string' },
      dtype: { type: 'string' },
      provider: { type: 'string' },
      server: { type: 'string' },
      concurrency: { type: 'string' },
      timeout: { type: 'string' },
      retries: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (!positionals.length) throw new UsageError('name the videos or folders to answer about');
  if (!v.question?.trim()) throw new UsageError('--question is required, e.g. --question "Track the red car"');
  const options = {
    question: v.question,
    range: v.range ? parseRange(v.range) : undefined,
    maxFrames: positiveInt('max-frames', v['max-frames'], 64, 384),
    maxNewTokens: positiveInt('max-new-tokens', v['max-new-tokens'], DEFAULT_MAX_NEW_TOKENS, DEFAULT_MAX_NEW_TOKENS),
    out: v.out ?? 'results',
    exports: parseExports(v.export),
  };
  const tty = process.stderr.isTTY;
  const log = (m: string) => process.stderr.write(`${tty ? '\r\x1b[2K' : ''}${m}\n`);
  const backend = await openBackend(v, log);
  log(`${backend.kind === 'vllm' ? 'server' : 'local'} model ${backend.model.id} (${backend.model.dtype}); results in ${options.out}/`);

  const stop = new AbortController();
  const onSigint = () => {
    if (stop.signal.aborted) process.exit(130);
    log('stopping: questions in flight are dropped; run the same command again to finish the rest (Ctrl-C again to quit now)');
    stop.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  try {
    const s = await runBatch({ ...options, inputs: positionals, backend, app: APP, signal: stop.signal, onProgress: progressPrinter(), log });
    if (tty) process.stderr.write('\n');
    log(
      `${s.done.length} answered, ${s.skipped.length} finished earlier, ${s.failed.length} failed, of ${s.total} videos in ${duration(s.seconds)}` +
        (s.interrupted ? ' (stopped before the end: run again to finish)' : '') +
        `; report: ${join(options.out, 'batch-report.json')}`,
    );
    for (const f of s.failed) log(`  failed: ${f.message}`);
    return s.failed.length || s.interrupted ? 1 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    await backend.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      console.error(`batch: ${(e as Error).message}\n\n${USAGE}`);
      process.exit(2);
    }
    console.error(`batch: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
