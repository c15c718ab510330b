// One thread of the encoder pool (encoder-pool.ts): reads a job's block straight from its shard file
// into a reused buffer, decodes BF16 / F16 to float32, encodes it with the platform-free kernels of
// src/molmo2/onnx/encode.ts into the output buffer it was lent (or a new one), and sends that back.
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { blockOutputSizes, encodeBlock } from '../../src/molmo2/onnx/encode.ts';
import { float16Value } from '../../src/molmo2/onnx/fp16.ts';
import type { WorkerJob, WorkerReply } from './encoder-pool.ts';

const port = parentPort;
if (!port) throw new Error('encoder-worker.ts runs as a worker thread');

const files = new Map<string, number>();
let input = new ArrayBuffer(0);
let decoded = new ArrayBuffer(0);
let half: Float32Array | undefined;

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

function run(job: WorkerJob): WorkerReply {
  const t0 = performance.now();
  const rows = job.rowTo - job.rowFrom;
  const width = job.colTo - job.colFrom;
  const count = rows * width;
  const el = job.dtype === 'F32' ? 4 : 2;
  input = grown(input, count * el);
  const raw = new Uint8Array(input, 0, count * el);
  const file = fd(job.path);
  const what = `${job.path} (${job.tensor})`;
  if (job.colFrom === 0 && job.colTo === job.cols) {
    readFully(file, raw, job.position + job.rowFrom * job.cols * el, what);
  } else {
    // A tile: one read per row of the columns it covers.
    for (let r = 0; r < rows; r++) readFully(file, raw.subarray(r * width * el, (r + 1) * width * el), job.position + ((job.rowFrom + r) * job.cols + job.colFrom) * el, what);
  }
  const t1 = performance.now();
  let values: Float32Array;
  if (job.dtype === 'F32') {
    values = new Float32Array(input, 0, count);
  } else {
    decoded = grown(decoded, count * 4);
    const src = new Uint16Array(input, 0, count);
    if (job.dtype === 'BF16') {
      const out = new Uint32Array(decoded, 0, count);
      for (let i = 0; i < count; i++) out[i] = src[i] << 16;
    } else {
      half ??= Float32Array.from({ length: 0x10000 }, (_, h) => float16Value(h));
      const out = new Float32Array(decoded, 0, count);
      for (let i = 0; i < count; i++) out[i] = half[src[i]];
    }
    values = new Float32Array(decoded, 0, count);
  }
  const t2 = performance.now();
  const sizes = blockOutputSizes(job);
  const { offsets, total } = outputLayout(sizes);
  const out = job.out && job.out.byteLength >= total ? job.out : new ArrayBuffer(total);
  encodeBlock(
    values,
    job,
    sizes.map((s, i) => new Uint8Array(out, offsets[i], s)),
  );
  const t3 = performance.now();
  return { id: job.id, out, offsets, sizes, ms: { read: t1 - t0, decode: t2 - t1, encode: t3 - t2 } };
}

port.on('message', (msg: WorkerJob | { close: true }) => {
  if ('close' in msg) {
    for (const f of files.values()) closeSync(f);
    files.clear();
    port.close();
    return;
  }
  let reply: WorkerReply;
  try {
    reply = run(msg);
  } catch (e) {
    port.postMessage({ id: msg.id, error: (e as Error).message ?? String(e) } satisfies WorkerReply);
    return;
  }
  port.postMessage(reply, [reply.out!]);
});
