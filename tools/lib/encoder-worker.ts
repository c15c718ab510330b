// One thread of the encoder pool (encoder-pool.ts): reads a job's block straight from its shard file
// into a reused buffer — or, for a checkpoint streamed from the Hub, fetches it with a Range request
// (resumed and retried by RangeFetcher; the next jobs' bytes are fetched while one is encoded, within
// PREFETCH_BYTES) — decodes BF16 / F16 to float32, encodes it with the platform-free kernels of
// src/molmo2/onnx (symmetric int4 with block 32 on the WebAssembly SIMD kernel, whose memory the
// block is read into directly) into the output buffer it was lent (or a new one), and sends that back.
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { HubError } from '../../src/molmo2/hub/location.ts';
import { RangeFetcher } from '../../src/molmo2/hub/range-fetch.ts';
import { blockOutputSizes, encodeBlock } from '../../src/molmo2/onnx/encode.ts';
import { float16Value } from '../../src/molmo2/fp16.ts';
import { q4Simd } from '../../src/molmo2/onnx/q4-simd.ts';
import { directUrlFetch } from './direct-urls.ts';
import type { WorkerJob, WorkerLog, WorkerReply } from './encoder-pool.ts';

const port = parentPort;
if (!port) throw new Error('encoder-worker.ts runs as a worker thread');
const log = (line: string) => port.postMessage({ log: line } satisfies WorkerLog);

const files = new Map<string, number>();
let input = new ArrayBuffer(0);
let decoded = new ArrayBuffer(0);
let half: Float32Array | undefined;
const simd = q4Simd();
let band = new ArrayBuffer(0);
/** A tile narrower than this (bytes per row) is cut out of whole rows read in bands, not read row by row. */
const MIN_ROW_READ = 2048;
const BAND_BYTES = 8 << 20;

function fd(path: string): number {
  let f = files.get(path);
  if (f === undefined) {
    f = openSync(path, 'r');
    files.set(path, f);
  }
  return f;
}

function grown(buffer: ArrayBuffer, bytes: number): ArrayBuffer {
  return buffer.byteLength >= bytes ? buffer : new ArrayBuffer(Math.max(bytes, Math.min(2 * buffer.byteLength, bytes + (64 << 20))));
}

function readFully(file: number, into: Uint8Array, position: number, what: string): void {
  let done = 0;
  while (done < into.byteLength) {
    const n = readSync(file, into, done, into.byteLength - done, position + done);
    if (n === 0) throw new Error(`${what}: unexpected end of file after ${position + done} bytes (truncated?)`);
    done += n;
  }
}

/** Outputs at 8-byte aligned offsets of one buffer. */
export function outputLayout(sizes: number[]): { offsets: number[]; total: number } {
  const offsets: number[] = [];
  let total = 0;
  for (const s of sizes) {
    offsets.push(total);
    total += Math.ceil(s / 8) * 8;
  }
  return { offsets, total };
}

/**
 * Encodes one job. `fetched` holds the block's stored bytes when they came from the Hub (whole rows);
 * otherwise they are read from `job.path`. `waitedMs` is the time spent waiting for fetched bytes.
 */
function run(job: WorkerJob, fetched?: Uint8Array, waitedMs = 0): WorkerReply {
  const t0 = performance.now() - waitedMs;
  const rows = job.rowTo - job.rowFrom;
  const width = job.colTo - job.colFrom;
  const count = rows * width;
  const e = job.encoding;
  const kernel = simd && e.kind === 'q4' && e.symmetric && e.blockSize === 32 ? simd : undefined;
  // Float32 values go straight to where they are encoded from: the kernel's memory or `input`.
  const el = job.dtype === 'F32' ? 4 : 2;
  const target = kernel ? kernel.input(count) : undefined;
  let raw: Uint8Array;
  if (fetched) {
    if (fetched.byteLength !== count * el) throw new Error(`${job.tensor}: fetched ${fetched.byteLength} bytes for a ${count * el}-byte block`);
    raw = fetched;
    if (target && el === 4) new Uint8Array(target.buffer, target.byteOffset, count * 4).set(fetched);
  } else {
    if (!target || el !== 4) input = grown(input, count * el);
    raw = target && el === 4 ? new Uint8Array(target.buffer, target.byteOffset, count * 4) : new Uint8Array(input, 0, count * el);
    if (job.path === undefined) throw new Error(`${job.tensor}: the job says neither where its file is nor where to fetch it`);
    if (job.transient) {
      const file = openSync(job.path, 'r');
      try {
        readBlock(job, file, raw, el);
      } finally {
        closeSync(file);
      }
    } else {
      readBlock(job, fd(job.path), raw, el);
    }
  }
  const t1 = performance.now();
  let values: Float32Array;
  if (job.dtype === 'F32') {
    values = target ?? new Float32Array(raw.buffer, raw.byteOffset, count);
  } else {
    if (!target) decoded = grown(decoded, count * 4);
    values = target ?? new Float32Array(decoded, 0, count);
    const src = new Uint16Array(raw.buffer, raw.byteOffset, count);
    if (job.dtype === 'BF16') {
      const out = new Uint32Array(values.buffer, values.byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = src[i] << 16;
    } else {
      half ??= Float32Array.from({ length: 0x10000 }, (_, h) => float16Value(h));
      for (let i = 0; i < count; i++) values[i] = half[src[i]];
    }
  }
  const t2 = performance.now();
  const sizes = blockOutputSizes(job);
  const { offsets, total } = outputLayout(sizes);
  const out = job.out && job.out.byteLength >= total ? job.out : new ArrayBuffer(total);
  const outputs = sizes.map((s, i) => new Uint8Array(out, offsets[i], s));
  if (kernel && e.kind === 'q4') {
    const q = kernel.quantize(rows, job.cols, e.scaleType);
    outputs[0].set(q.packed);
    outputs[1].set(q.scales);
  } else {
    encodeBlock(values, job, outputs);
  }
  const t3 = performance.now();
  return { id: job.id, out, offsets, sizes, ms: { read: t1 - t0, decode: t2 - t1, encode: t3 - t2 } };
}

/** Reads the job's block from an open shard file into `raw` (row-major [rows, colTo − colFrom]). */
function readBlock(job: WorkerJob, file: number, raw: Uint8Array, el: number): void {
  const rows = job.rowTo - job.rowFrom;
  const width = job.colTo - job.colFrom;
  const what = `${job.path} (${job.tensor})`;
  if (job.colFrom === 0 && job.colTo === job.cols) {
    readFully(file, raw, job.position + job.rowFrom * job.cols * el, what);
  } else if (width * el >= MIN_ROW_READ) {
    // A tile: one read per row of the columns it covers.
    for (let r = 0; r < rows; r++) readFully(file, raw.subarray(r * width * el, (r + 1) * width * el), job.position + ((job.rowFrom + r) * job.cols + job.colFrom) * el, what);
  } else {
    // A narrow tile: whole rows in bands (few large reads), the tile's columns copied out.
    const rowBytes = job.cols * el;
    const perBand = Math.max(1, Math.floor(BAND_BYTES / rowBytes));
    band = grown(band, Math.min(rows, perBand) * rowBytes);
    for (let r0 = 0; r0 < rows; r0 += perBand) {
      const n = Math.min(perBand, rows - r0);
      const bytes = new Uint8Array(band, 0, n * rowBytes);
      readFully(file, bytes, job.position + (job.rowFrom + r0) * rowBytes, what);
      for (let r = 0; r < n; r++) raw.set(bytes.subarray(r * rowBytes + job.colFrom * el, r * rowBytes + job.colTo * el), (r0 + r) * width * el);
    }
  }
}

// Streamed jobs: Range requests go to the shard's signed download URL where the Hub redirects to one
// (asked once per shard and thread; see direct-urls.ts), so they do not count against the Hub's rate
// limit on resolve requests.
/** Stored bytes of queued jobs fetched ahead of the one being encoded (one larger job alone may exceed it). */
const PREFETCH_BYTES = 16 << 20;
const stopping = new AbortController();
const directFetch = directUrlFetch();

/** Fetches the stored bytes of a streamed job (whole rows); `counter.bytes` counts what arrives. */
async function fetchBlock(job: WorkerJob, counter: { bytes: number }): Promise<Uint8Array> {
  const src = job.remote!;
  if (job.colFrom !== 0 || job.colTo !== job.cols) throw new Error(`${job.tensor}: a streamed job must take whole rows`);
  const el = job.dtype === 'F32' ? 4 : 2;
  const start = job.position + job.rowFrom * job.cols * el;
  const end = job.position + job.rowTo * job.cols * el;
  const fetcher = new RangeFetcher(src.repo, () => src.url, {
    retries: src.retries,
    backoffMs: src.backoffMs,
    stallMs: src.stallMs,
    signal: stopping.signal,
    log,
    fetch: directFetch,
    onBytes: (n) => (counter.bytes += n),
  });
  return fetcher.bytes(src.shard, start, end);
}

interface Pending {
  job: WorkerJob;
  /** Stored bytes of a streamed job. */
  bytes: number;
  data?: Promise<Uint8Array>;
  counter: { bytes: number };
}

const pending: Pending[] = [];
let prefetched = 0;
let pumping = false;
let closing = false;

/** Starts fetching queued streamed jobs, in order, within PREFETCH_BYTES (the first one always). */
function startFetches(): void {
  for (const p of pending) {
    if (!p.job.remote || p.data) continue;
    if (prefetched > 0 && prefetched + p.bytes > PREFETCH_BYTES) return;
    prefetched += p.bytes;
    p.data = fetchBlock(p.job, p.counter);
    p.data.catch(() => {}); // reported when its turn comes
  }
}

/** Encodes the queued jobs one at a time, in the order they came. */
async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  while (pending.length > 0 && !closing) {
    startFetches();
    const p = pending[0];
    let reply: WorkerReply;
    const waited = performance.now();
    try {
      const data = p.data ? await p.data : undefined;
      reply = run(p.job, data, performance.now() - waited);
    } catch (e) {
      reply = { id: p.job.id, error: (e as Error).message ?? String(e), ...(e instanceof HubError ? { hubError: { status: e.status } } : {}) };
    }
    pending.shift();
    if (p.data) prefetched -= p.bytes;
    if (closing) break;
    reply.fetched = p.counter.bytes;
    port!.postMessage(reply, reply.out ? [reply.out] : []);
  }
  pumping = false;
}

port.on('message', (msg: WorkerJob | { close: true }) => {
  if ('close' in msg) {
    closing = true;
    stopping.abort(new Error('the encoder pool was closed'));
    for (const f of files.values()) closeSync(f);
    files.clear();
    port.close();
    return;
  }
  const bytes = msg.remote ? (msg.rowTo - msg.rowFrom) * msg.cols * (msg.dtype === 'F32' ? 4 : 2) : 0;
  pending.push({ job: msg, bytes, counter: { bytes: 0 } });
  void pump();
});
