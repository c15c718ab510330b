// The converter's BlockEncoder: encoding jobs run on a pool of worker threads (encoder-worker.ts),
// sized from os.availableParallelism(). Each thread reads its job's block straight from the shard
// file, so the main thread only orders the results and writes them. Memory stays bounded: at most
// `maxAccepted` jobs are accepted (queued, running, or waiting to be written) at once, and output
// buffers are lent back to the threads once their bytes are stored.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { blockOutputSizes, checkBlockRequest, type BlockEncoder, type BlockRequest, type EncodedBlock } from '../../src/molmo2/onnx/encode.ts';
import type { SafeDtype } from '../../src/molmo2/safetensors.ts';
import type { TensorBytes } from './checkpoint.ts';

/** A job as a thread receives it: the request plus where the tensor's bytes are. */
export interface WorkerJob extends BlockRequest {
  id: number;
  path: string;
  position: number;
  dtype: SafeDtype;
  /** A buffer lent for the outputs (transferred); the thread allocates one when it is too small. */
  out?: ArrayBuffer;
}

export interface WorkerReply {
  id: number;
  out?: ArrayBuffer;
  offsets?: number[];
  sizes?: number[];
  ms?: { read: number; decode: number; encode: number };
  error?: string;
}

/** Where tensors lie on disk (SafetensorsCheckpoint.byteRange). */
export interface TensorLocator {
  byteRange(name: string): TensorBytes;
}

export interface EncoderPoolOptions {
  /** Worker threads (default os.availableParallelism()). */
  threads?: number;
  /** Jobs accepted at once (default 8 per thread). */
  maxAccepted?: number;
  /** Output bytes of the jobs accepted at once (default 256 MiB; one job may exceed it alone). */
  maxAcceptedBytes?: number;
}

/** Thread time summed over all jobs, in seconds. */
export interface EncoderStats {
  threads: number;
  jobs: number;
  readS: number;
  decodeS: number;
  encodeS: number;
  /** Bytes of checkpoint data the jobs read. */
  bytesRead: number;
  /** Time threads had no job (after their first), summed: the main thread did not keep up. */
  idleS: number;
}

interface Running {
  job: WorkerJob;
  /** Output bytes. */
  bytes: number;
  resolve: (b: EncodedBlock) => void;
  reject: (e: unknown) => void;
}

interface Thread {
  worker: Worker;
  running: Map<number, Running>;
  exited: boolean;
  /** When the thread ran out of jobs (performance.now()), or undefined while it has some. */
  idleSince?: number;
}

const WORKER_ENTRY = new URL('./encoder-worker.mjs', import.meta.url);
/** Jobs posted to one thread ahead of its results, so it never waits for the main thread. */
const PER_THREAD = 4;

export class WorkerEncoder implements BlockEncoder {
  private readonly threads: Thread[] = [];
  private readonly queue: Running[] = [];
  private readonly waiting: (() => void)[] = [];
  private readonly spare: ArrayBuffer[] = [];
  private accepted = 0;
  private acceptedBytes = 0;
  private nextId = 0;
  private error: unknown;
  private closed = false;
  private readonly totals: EncoderStats;
  readonly maxAccepted: number;
  readonly maxAcceptedBytes: number;

  /** Threads start with the first job. */
  constructor(
    private readonly locator: TensorLocator,
    opts: EncoderPoolOptions = {},
  ) {
    const n = Math.max(1, opts.threads ?? availableParallelism());
    this.maxAccepted = Math.max(n * PER_THREAD, opts.maxAccepted ?? 8 * n);
    this.maxAcceptedBytes = opts.maxAcceptedBytes ?? 256 << 20;
    this.totals = { threads: n, jobs: 0, readS: 0, decodeS: 0, encodeS: 0, bytesRead: 0, idleS: 0 };
  }

  private start(): void {
    for (let i = 0; i < this.totals.threads; i++) {
      const thread: Thread = { worker: new Worker(WORKER_ENTRY), running: new Map(), exited: false };
      thread.worker.on('message', (reply: WorkerReply) => this.onReply(thread, reply));
      thread.worker.on('error', (e) => this.fail(e));
      thread.worker.on('exit', (code) => {
        thread.exited = true;
        if (!this.closed) this.fail(new Error(`an encoder thread exited (code ${code})`));
      });
      this.threads.push(thread);
    }
  }

  stats(): EncoderStats {
    return { ...this.totals };
  }

  async submit(req: BlockRequest): Promise<{ done: Promise<EncodedBlock> }> {
    const bytes = blockOutputSizes(req).reduce((s, n) => s + Math.ceil(n / 8) * 8, 0);
    const full = () => this.accepted >= this.maxAccepted || (this.accepted > 0 && this.acceptedBytes + bytes > this.maxAcceptedBytes);
    while (this.error === undefined && !this.closed && full()) await new Promise<void>((r) => this.waiting.push(r));
    if (this.error !== undefined) throw this.error;
    if (this.closed) throw new Error('the encoder pool is closed');
    const where = this.locator.byteRange(req.tensor);
    const rows = where.shape.length === 0 ? 1 : where.shape[0];
    if (!(where.dtype === 'F32' || where.dtype === 'F16' || where.dtype === 'BF16')) throw new Error(`tensor ${req.tensor} has dtype ${where.dtype}; only F32, F16 and BF16 weights can be converted`);
    if (rows * req.cols * (where.dtype === 'F32' ? 4 : 2) !== where.length) throw new Error(`${req.tensor}: [${where.shape}] ${where.dtype} does not have ${req.cols} columns`);
    checkBlockRequest(req, rows);
    if (this.threads.length === 0) this.start();
    this.accepted++;
    this.acceptedBytes += bytes;
    const job: WorkerJob = { ...req, encoding: { ...req.encoding }, id: this.nextId++, path: where.path, position: where.position, dtype: where.dtype };
    const done = new Promise<EncodedBlock>((resolve, reject) => this.queue.push({ job, bytes, resolve, reject }));
    done.catch(() => {}); // the caller's handler reports it
    this.dispatch();
    return { done };
  }

  /** Posts queued jobs to threads with room, the least busy first. */
  private dispatch(): void {
    while (this.queue.length > 0) {
      let best: Thread | undefined;
      for (const t of this.threads) if (t.running.size < PER_THREAD && (!best || t.running.size < best.running.size)) best = t;
      if (!best) return;
      const r = this.queue.shift()!;
      const i = this.spare.findLastIndex((b) => b.byteLength >= r.bytes); // the smallest that fits
      if (i >= 0) r.job.out = this.spare.splice(i, 1)[0];
      best.running.set(r.job.id, r);
      if (best.idleSince !== undefined) {
        this.totals.idleS += (performance.now() - best.idleSince) / 1000;
        best.idleSince = undefined;
      }
      best.worker.postMessage(r.job, r.job.out ? [r.job.out] : []);
    }
  }

  private onReply(thread: Thread, reply: WorkerReply): void {
    const r = thread.running.get(reply.id);
    if (!r) return;
    thread.running.delete(reply.id);
    this.dispatch();
    if (thread.running.size === 0) thread.idleSince = performance.now();
    if (reply.error !== undefined || !reply.out) {
      this.releaseSlot(r.bytes);
      r.reject(new Error(reply.error ?? 'encoder thread sent no result'));
      return;
    }
    const { out, offsets, sizes, ms } = reply;
    const t = this.totals;
    t.jobs++;
    t.readS += ms!.read / 1000;
    t.decodeS += ms!.decode / 1000;
    t.encodeS += ms!.encode / 1000;
    t.bytesRead += (r.job.rowTo - r.job.rowFrom) * (r.job.colTo - r.job.colFrom) * (r.job.dtype === 'F32' ? 4 : 2);
    let released = false;
    r.resolve({
      outputs: sizes!.map((s, i) => new Uint8Array(out, offsets![i], s)),
      release: () => {
        if (released) return;
        released = true;
        this.keepSpare(out);
        this.releaseSlot(r.bytes);
      },
    });
  }

  /** Keeps an output buffer for a later job, within the byte budget (small ones first to go). */
  private keepSpare(out: ArrayBuffer): void {
    this.spare.push(out);
    let total = this.spare.reduce((s, b) => s + b.byteLength, 0);
    this.spare.sort((a, b) => b.byteLength - a.byteLength);
    while (this.spare.length > this.maxAccepted || total > this.maxAcceptedBytes) total -= this.spare.pop()!.byteLength;
  }

  private releaseSlot(bytes: number): void {
    this.accepted--;
    this.acceptedBytes -= bytes;
    // Wake every waiter: each re-checks whether its job fits now.
    for (const w of this.waiting.splice(0)) w();
  }

  private fail(e: unknown): void {
    if (this.error !== undefined) return;
    this.error = e;
    for (const t of this.threads) {
      for (const r of t.running.values()) r.reject(e);
      t.running.clear();
    }
    for (const r of this.queue.splice(0)) r.reject(e);
    for (const w of this.waiting.splice(0)) w();
  }

  /** Stops the threads (each closes its files first). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.splice(0)) w();
    await Promise.all(
      this.threads.map(
        (t) =>
          new Promise<void>((resolve) => {
            if (t.exited) return resolve();
            t.worker.once('exit', () => resolve());
            t.worker.postMessage({ close: true });
            // A thread stuck in a job is stopped outright.
            setTimeout(() => void t.worker.terminate(), 5000).unref();
          }),
      ),
    );
    for (const t of this.threads) {
      for (const r of t.running.values()) r.reject(new Error('the encoder pool was closed'));
      t.running.clear();
    }
    for (const r of this.queue.splice(0)) r.reject(new Error('the encoder pool was closed'));
  }
}
