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
  /** Jobs accepted at once (default 4 per thread). */
  maxAccepted?: number;
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
}

interface Running {
  job: WorkerJob;
  resolve: (b: EncodedBlock) => void;
  reject: (e: unknown) => void;
}

interface Thread {
  worker: Worker;
  running: Map<number, Running>;
  exited: boolean;
}

const WORKER_ENTRY = new URL('./encoder-worker.mjs', import.meta.url);
/** Jobs posted to one thread ahead of its results, so it never waits for the main thread. */
const PER_THREAD = 2;

export class WorkerEncoder implements BlockEncoder {
  private readonly threads: Thread[] = [];
  private readonly queue: Running[] = [];
  private readonly waiting: (() => void)[] = [];
  private readonly spare: ArrayBuffer[] = [];
  private accepted = 0;
  private nextId = 0;
  private error: unknown;
  private closed = false;
  private readonly totals: EncoderStats;
  readonly maxAccepted: number;

  /** Threads start with the first job. */
  constructor(
    private readonly locator: TensorLocator,
    opts: EncoderPoolOptions = {},
  ) {
    const n = Math.max(1, opts.threads ?? availableParallelism());
    this.maxAccepted = Math.max(n * PER_THREAD, opts.maxAccepted ?? 4 * n);
    this.totals = { threads: n, jobs: 0, readS: 0, decodeS: 0, encodeS: 0, bytesRead: 0 };
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
    while (this.error === undefined && !this.closed && this.accepted >= this.maxAccepted) await new Promise<void>((r) => this.waiting.push(r));
    if (this.error !== undefined) throw this.error;
    if (this.closed) throw new Error('the encoder pool is closed');
    const bytes = this.locator.byteRange(req.tensor);
    const rows = bytes.shape.length === 0 ? 1 : bytes.shape[0];
    if (rows * req.cols * (bytes.dtype === 'F32' ? 4 : 2) !== bytes.length) throw new Error(`${req.tensor}: [${bytes.shape}] ${bytes.dtype} does not have ${req.cols} columns`);
    if (!(bytes.dtype === 'F32' || bytes.dtype === 'F16' || bytes.dtype === 'BF16')) throw new Error(`tensor ${req.tensor} has dtype ${bytes.dtype}; only F32, F16 and BF16 weights can be converted`);
    checkBlockRequest(req, rows);
    if (this.threads.length === 0) this.start();
    this.accepted++;
    const job: WorkerJob = { ...req, encoding: { ...req.encoding }, id: this.nextId++, path: bytes.path, position: bytes.position, dtype: bytes.dtype };
    const done = new Promise<EncodedBlock>((resolve, reject) => this.queue.push({ job, resolve, reject }));
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
      const need = blockOutputSizes(r.job).reduce((s, n) => s + Math.ceil(n / 8) * 8, 0);
      const i = this.spare.findIndex((b) => b.byteLength >= need);
      if (i >= 0) r.job.out = this.spare.splice(i, 1)[0];
      best.running.set(r.job.id, r);
      best.worker.postMessage(r.job, r.job.out ? [r.job.out] : []);
    }
  }

  private onReply(thread: Thread, reply: WorkerReply): void {
    const r = thread.running.get(reply.id);
    if (!r) return;
    thread.running.delete(reply.id);
    this.dispatch();
    if (reply.error !== undefined || !reply.out) {
      this.releaseSlot();
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
        if (this.spare.length < this.maxAccepted) this.spare.push(out);
        this.releaseSlot();
      },
    });
  }

  private releaseSlot(): void {
    this.accepted--;
    this.waiting.shift()?.();
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
