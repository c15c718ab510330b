// The graph builders read norms, biases and other small tensors one at a time, each awaited before
// the next: streamed from the Hub that is hundreds of Range requests in a row, each a round trip.
// SmallTensorPrefetch reads all of them at the first such read, several requests in parallel (nearby
// ones merged into one request), and keeps them for the whole conversion: a bounded cache (the
// small tensors of Molmo2-4B hold a few MB). Large tensors are passed through to the checkpoint.
import type { RemoteCheckpoint } from '../../src/molmo2/hub/remote-checkpoint.ts';
import { toFloat32, type SafeDtype } from '../../src/molmo2/safetensors.ts';
import type { WeightReader } from '../../src/molmo2/weights.ts';

export interface SmallTensorOptions {
  /** Tensors of at most this many stored bytes are prefetched (default 1 MiB). */
  maxTensorBytes?: number;
  /** Small tensors beyond this many bytes in all are read when asked for (default 64 MiB). */
  maxTotalBytes?: number;
  /** Tensors at most this far apart in a shard are read with one request (default 64 KiB). */
  maxGap?: number;
  /** Requests in flight (default 8). */
  parallel?: number;
}

export class SmallTensorPrefetch implements WeightReader {
  private loaded?: Promise<Map<string, Uint8Array>>;
  private readonly small = new Set<string>();

  constructor(
    private readonly remote: RemoteCheckpoint,
    private readonly opts: SmallTensorOptions = {},
  ) {
    let total = 0;
    const max = opts.maxTensorBytes ?? 1 << 20;
    const sizes = remote.names().map((name) => ({ name, bytes: remote.byteRange(name).length }));
    for (const t of sizes.filter((t) => t.bytes <= max).sort((a, b) => a.bytes - b.bytes)) {
      if (total + t.bytes > (opts.maxTotalBytes ?? 64 << 20)) break;
      total += t.bytes;
      this.small.add(t.name);
    }
  }

  names(): string[] {
    return this.remote.names();
  }

  has(name: string): boolean {
    return this.remote.has(name);
  }

  shape(name: string): number[] {
    return this.remote.shape(name);
  }

  dtype(name: string): SafeDtype {
    return this.remote.dtype(name);
  }

  async read(name: string): Promise<Float32Array> {
    if (!this.small.has(name)) return this.remote.read(name);
    const dtype = this.remote.dtype(name);
    if (!(dtype === 'F32' || dtype === 'F16' || dtype === 'BF16')) throw new Error(`tensor ${name} has dtype ${dtype}; only F32, F16 and BF16 weights can be converted`);
    this.loaded ??= this.load();
    return toFloat32((await this.loaded).get(name)!, dtype);
  }

  async readRows(name: string, from: number, to: number): Promise<Float32Array> {
    if (!this.small.has(name)) return this.remote.readRows(name, from, to);
    const rows = this.remote.shape(name)[0] ?? 1;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to && to <= rows)) throw new Error(`tensor ${name}: rows [${from}, ${to}) are outside its ${rows} rows`);
    const all = await this.read(name);
    const perRow = all.length / rows;
    return all.slice(from * perRow, to * perRow);
  }

  /** Reads every small tensor: runs of nearby ones per request, `parallel` requests at a time. */
  private async load(): Promise<Map<string, Uint8Array>> {
    const located = [...this.small].map((name) => ({ name, ...this.remote.byteRange(name) })).sort((a, b) => (a.shard === b.shard ? a.position - b.position : a.shard < b.shard ? -1 : 1));
    const runs: { shard: string; start: number; end: number; members: typeof located }[] = [];
    for (const t of located) {
      const last = runs.at(-1);
      if (last && last.shard === t.shard && t.position - last.end <= (this.opts.maxGap ?? 64 << 10)) {
        last.end = Math.max(last.end, t.position + t.length);
        last.members.push(t);
      } else {
        runs.push({ shard: t.shard, start: t.position, end: t.position + t.length, members: [t] });
      }
    }
    const out = new Map<string, Uint8Array>();
    let next = 0;
    const worker = async () => {
      while (next < runs.length) {
        const run = runs[next++];
        const bytes = await this.remote.fetcher.bytes(run.shard, run.start, run.end);
        for (const t of run.members) out.set(t.name, bytes.subarray(t.position - run.start, t.position - run.start + t.length));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.parallel ?? 8, runs.length) }, worker));
    return out;
  }
}
