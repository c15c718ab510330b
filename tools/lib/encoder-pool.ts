// The converter's BlockEncoder: encoding jobs run on a pool of worker threads (encoder-worker.ts),
// sized from os.availableParallelism(). Each thread reads its job's block itself — straight from the
// shard file, or, for a checkpoint streamed from the Hub, with a Range request — so the main thread
// only orders the results and writes them. Memory stays bounded: at most `maxAccepted` jobs are
// accepted (queued, running, or waiting to be written) at once, and output buffers are lent back to
// the threads once their bytes are stored. A streamed tensor encoded in column tiles (transposed
// float weights larger than one job) is fetched once into a file of a bounded tile cache and its
// tiles are read from there, instead of fetching whole rows again for every tile.
import { mkdir, open, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { HubError, type HubRepo } from '../../src/molmo2/hub/location.ts';
import type { RangeFetcher } from '../../src/molmo2/hub/range-fetch.ts';
import type { RemoteTensorBytes } from '../../src/molmo2/hub/remote-checkpoint.ts';
import { blockOutputSizes, checkBlockRequest, type BlockEncoder, type BlockRequest, type EncodedBlock } from '../../src/molmo2/onnx/encode.ts';
import type { SafeDtype } from '../../src/molmo2/safetensors.ts';
import type { TensorBytes } from './checkpoint.ts';

/** Where a thread fetches a streamed job's bytes: the shard's resolve URL on the Hub. */
export interface RemoteSource {
  /** For the token (sent only to the Hub's own origin) and for messages. */
  repo: HubRepo;
  shard: string;
  url: string;
  retries: number;
  backoffMs: number;
  stallMs: number;
}

/** A job as a thread receives it: the request plus where the tensor's bytes are. */
export interface WorkerJob extends BlockRequest {
  id: number;
  /** The shard file on disk (or a tile-cache file); absent for a streamed job. */
  path?: string;
  /** The file is a tile-cache file: opened for this job only (it is removed once its tensor is done). */
  transient?: boolean;
  /** A streamed job (whole rows only): the thread fetches its bytes with one Range request. */
  remote?: RemoteSource;
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
  /** Bytes the thread received over the network for the job (resumed transfers included). */
  fetched?: number;
  error?: string;
  /** The error was the Hub's answer (a HubError: printed as a plain message), with its HTTP status if any. */
  hubError?: { status?: number };
}

/** A line a thread wants logged (a resumed or retried transfer). */
export interface WorkerLog {
  log: string;
}

/** Where tensors lie: on disk (SafetensorsCheckpoint.byteRange) or on the Hub (RemoteCheckpoint.byteRange). */
export interface TensorLocator {
  byteRange(name: string): TensorBytes | RemoteTensorBytes;
}

/** For a locator whose tensors are on the Hub. */
export interface RemoteReadOptions {
  /** Fetches tensors for the tile cache (the RemoteCheckpoint's fetcher: its repo gives the token). */
  fetcher: RangeFetcher;
  /** Folder for the tile cache (created when needed, removed by close()). */
  tileDir: string;
  /** The threads' Range requests: attempts without progress, first backoff, stall timeout. */
  retries?: number;
  backoffMs?: number;
  stallMs?: number;
}

export interface EncoderPoolOptions {
  /** Worker threads (default os.availableParallelism()). */
  threads?: number;
  /** Jobs accepted at once (default 8 per thread). */
  maxAccepted?: number;
  /** Output bytes of the jobs accepted at once (default 256 MiB; one job may exceed it alone). */
  maxAcceptedBytes?: number;
  /** Needed when the locator's tensors are on the Hub. */
  remote?: RemoteReadOptions;
  /** Lines from the threads (resumed transfers). */
  log?: (msg: string) => void;
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
  /** Bytes the threads received from the Hub (streamed checkpoints; resumed transfers included). */
  bytesFetched: number;
  /** Time threads had no job (after their first), summed: the main thread did not keep up. */
  idleS: number;
}

interface Running {
  job: WorkerJob;
  /** The tensor whose tile-cache file the job reads (released when the job is done). */
  tile?: string;
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
  private readonly tiles?: TileCache;

  /** Threads start with the first job. */
  constructor(
    private readonly locator: TensorLocator,
    private readonly opts: EncoderPoolOptions = {},
  ) {
    const n = Math.max(1, opts.threads ?? availableParallelism());
    this.maxAccepted = Math.max(n * PER_THREAD, opts.maxAccepted ?? 8 * n);
    this.maxAcceptedBytes = opts.maxAcceptedBytes ?? 256 << 20;
    this.totals = { threads: n, jobs: 0, readS: 0, decodeS: 0, encodeS: 0, bytesRead: 0, bytesFetched: 0, idleS: 0 };
    if (opts.remote) this.tiles = new TileCache(opts.remote.tileDir, opts.remote.fetcher);
  }

  private start(): void {
    for (let i = 0; i < this.totals.threads; i++) {
      const thread: Thread = { worker: new Worker(WORKER_ENTRY), running: new Map(), exited: false };
      thread.worker.on('message', (msg: WorkerReply | WorkerLog) => ('log' in msg ? this.opts.log?.(msg.log) : this.onReply(thread, msg)));
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
    const wholeRows = req.colFrom === 0 && req.colTo === req.cols;
    const remote = 'url' in where ? this.opts.remote : undefined;
    if ('url' in where && !remote) throw new Error(`${req.tensor} is on the Hub: the encoder pool needs the remote options to read it`);
    if (this.threads.length === 0) this.start();
    this.accepted++;
    this.acceptedBytes += bytes;
    const job: WorkerJob = { ...req, encoding: { ...req.encoding }, id: this.nextId++, position: where.position, dtype: where.dtype };
    let ready: Promise<void> | undefined;
    let tile: string | undefined;
    if ('path' in where) {
      job.path = where.path;
    } else if (wholeRows) {
      job.remote = { repo: remote!.fetcher.repo, shard: where.shard, url: where.url, retries: remote!.retries ?? 6, backoffMs: remote!.backoffMs ?? 1000, stallMs: remote!.stallMs ?? 60_000 };
    } else {
      // A column tile of a streamed tensor: read from the tensor's copy in the tile cache.
      tile = req.tensor;
      ready = this.tiles!.acquire(req.tensor, where).then((file) => {
        job.path = file;
        job.position = 0;
        job.transient = true;
      });
    }
    const done = new Promise<EncodedBlock>((resolve, reject) => {
      const entry: Running = { job, tile, bytes, resolve, reject };
      if (!ready) return this.queue.push(entry);
      ready.then(
        () => {
          const stopped = this.error ?? (this.closed ? new Error('the encoder pool was closed') : undefined);
          if (stopped === undefined) {
            this.queue.push(entry);
            this.dispatch();
          } else {
            this.finished(entry);
            reject(stopped);
          }
        },
        (e) => {
          entry.tile = undefined; // acquire() failed: nothing to release
          this.finished(entry);
          reject(e);
        },
      );
    });
    done.catch(() => {}); // the caller's handler reports it
    this.dispatch();
    return { done };
  }

  /** A job that will not reach a thread (or came back with an error): its slot and tile are free. */
  private finished(r: Running): void {
    if (r.tile) this.tiles?.release(r.tile);
    r.tile = undefined;
    this.releaseSlot(r.bytes);
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
    this.totals.bytesFetched += reply.fetched ?? 0;
    if (r.tile) this.tiles?.release(r.tile);
    r.tile = undefined;
    if (reply.error !== undefined || !reply.out) {
      this.releaseSlot(r.bytes);
      r.reject(reply.hubError ? new HubError(reply.error ?? 'the Hub refused a read', reply.hubError.status, true) : new Error(reply.error ?? 'encoder thread sent no result'));
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

  /** Stops the threads (each closes its files first) and removes the tile cache. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const tiles = this.tiles?.close();
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
    await tiles;
  }
}

/** Bytes per Range request, and requests in flight, when a tensor is fetched into the tile cache. */
const TILE_FETCH_CHUNK = 16 << 20;
const TILE_FETCH_PARALLEL = 4;

/**
 * Streamed tensors that are encoded in column tiles, each fetched once into a file of `dir`. A file
 * is removed when a different tensor is fetched and no job reads it any more, so the cache holds the
 * tensor being tiled (the builders tile one tensor at a time): at most the largest such tensor on disk.
 */
class TileCache {
  private readonly entries = new Map<string, { file: string; ready: Promise<void>; users: number }>();
  private next = 0;

  constructor(
    private readonly dir: string,
    private readonly fetcher: RangeFetcher,
  ) {}

  /** The file holding `tensor`'s bytes (from offset 0), fetched first if needed; release() it after use. */
  async acquire(tensor: string, where: RemoteTensorBytes): Promise<string> {
    let entry = this.entries.get(tensor);
    if (!entry) {
      const file = join(this.dir, `tensor-${this.next++}.bin`);
      entry = { file, ready: this.evictUnused().then(() => this.fetch(where, file)), users: 0 };
      this.entries.set(tensor, entry);
    }
    entry.users++;
    try {
      await entry.ready;
    } catch (e) {
      entry.users--;
      if (this.entries.get(tensor) === entry) this.entries.delete(tensor);
      await rm(entry.file, { force: true });
      throw e;
    }
    return entry.file;
  }

  release(tensor: string): void {
    const entry = this.entries.get(tensor);
    if (entry) entry.users--;
  }

  /** Removes the files no job reads (taken out of the table at once, so a new entry is never among them). */
  private evictUnused(): Promise<unknown> {
    const unused = [...this.entries].filter(([, e]) => e.users === 0);
    for (const [tensor] of unused) this.entries.delete(tensor);
    return Promise.all(unused.map(([, e]) => rm(e.file, { force: true })));
  }

  private async fetch(where: RemoteTensorBytes, file: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const out = await open(file, 'w');
    let next = 0;
    const worker = async () => {
      const buffer = new Uint8Array(Math.min(TILE_FETCH_CHUNK, where.length));
      while (next < where.length) {
        const from = next;
        const n = Math.min(TILE_FETCH_CHUNK, where.length - from);
        next += n;
        try {
          const bytes = await this.fetcher.bytes(where.shard, where.position + from, where.position + from + n, buffer.subarray(0, n));
          for (let done = 0; done < n; ) done += (await out.write(bytes, done, n - done, from + done)).bytesWritten;
        } catch (e) {
          next = where.length; // the other requests stop too
          throw e;
        }
      }
    };
    const results = await Promise.allSettled(Array.from({ length: Math.min(TILE_FETCH_PARALLEL, Math.ceil(where.length / TILE_FETCH_CHUNK)) }, worker));
    await out.close();
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  async close(): Promise<void> {
    this.entries.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}
