// A checkpoint's weights read straight from the Hub, one tensor (or a block of its rows) per HTTP
// Range request: each shard's header is read once (its first 8 bytes, then the JSON), and no shard is
// ever held whole, so a 19 GB float32 checkpoint converts in the memory of a few blocks.
// Platform-free: the browser's Hub conversion and `npm run convert` (streaming) both use it.
import { headerLength, parseHeader, toFloat32, type SafeDtype, type TensorInfo } from '../safetensors.ts';
import type { Shape } from '../tensors.ts';
import type { WeightReader } from '../weights.ts';
import { fileUrl, type HubRepo } from './location.ts';
import { RangeFetcher, type RangeFetchOptions } from './range-fetch.ts';

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

export interface SafetensorsIndex {
  metadata?: Record<string, unknown>;
  weight_map: Record<string, string>;
}

/** The weight files an index lists (or the single model.safetensors); throws on a malformed index. */
export function shardsOf(index: SafetensorsIndex | undefined): string[] {
  if (!index) return [SINGLE_FILE];
  const map = index.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map) || !Object.values(map).every((f) => typeof f === 'string' && /^[\w.-]+\.safetensors$/.test(f))) {
    throw new Error(`${INDEX_FILE}: weight_map must map tensor names to .safetensors file names in the same folder`);
  }
  return [...new Set(Object.values(map))].sort();
}

interface Located {
  shard: string;
  info: TensorInfo;
  dataStart: number;
}

/** Where a tensor's bytes lie in its shard on the Hub. */
export interface RemoteTensorBytes {
  shard: string;
  url: string;
  position: number;
  length: number;
  dtype: SafeDtype;
  shape: number[];
}

export class RemoteCheckpoint implements WeightReader {
  private constructor(
    readonly fetcher: RangeFetcher,
    private readonly tensors: Map<string, Located>,
    /** Problems found while opening (a shard that disagrees with the index). */
    readonly problems: string[],
  ) {}

  /** Reads the header of every shard (two small Range requests each) and maps every tensor. */
  static async open(repo: HubRepo, index: SafetensorsIndex | undefined, opts: RangeFetchOptions = {}): Promise<RemoteCheckpoint> {
    const fetcher = new RangeFetcher(repo, (f) => fileUrl(repo, f), opts);
    const tensors = new Map<string, Located>();
    const problems: string[] = [];
    for (const shard of shardsOf(index)) {
      const first8 = await fetcher.bytes(shard, 0, 8);
      const n = headerLength(first8);
      const head = new Uint8Array(8 + n);
      head.set(first8);
      await fetcher.bytes(shard, 8, 8 + n, head.subarray(8));
      const header = parseHeader(head);
      for (const [name, info] of header.tensors) {
        tensors.set(name, { shard, info, dataStart: header.dataStart });
        if (index && index.weight_map[name] !== shard) problems.push(`${shard} holds ${name}, but ${INDEX_FILE} lists it ${index.weight_map[name] ? `in ${index.weight_map[name]}` : 'nowhere'}`);
      }
    }
    if (index) {
      for (const [name, shard] of Object.entries(index.weight_map)) {
        if (!tensors.has(name)) problems.push(`${INDEX_FILE} lists ${name} in ${shard}, but that file does not hold it`);
      }
    }
    return new RemoteCheckpoint(fetcher, tensors, problems);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  private locate(name: string): Located {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.fetcher.repo.repo} has no tensor ${name}`);
    return t;
  }

  shape(name: string): number[] {
    return [...this.locate(name).info.shape];
  }

  dtype(name: string): SafeDtype {
    return this.locate(name).info.dtype;
  }

  shapes(): Map<string, Shape> {
    return new Map([...this.tensors].map(([n, t]) => [n, [...t.info.shape]]));
  }

  /** Stored bytes of the named tensors (what converting them reads). */
  bytesOf(names: Iterable<string>): number {
    let sum = 0;
    for (const n of names) {
      const t = this.tensors.get(n);
      if (t) sum += t.info.end - t.info.begin;
    }
    return sum;
  }

  byteRange(name: string): RemoteTensorBytes {
    const { shard, info, dataStart } = this.locate(name);
    return { shard, url: fileUrl(this.fetcher.repo, shard), position: dataStart + info.begin, length: info.end - info.begin, dtype: info.dtype, shape: [...info.shape] };
  }

  async readRows(name: string, from: number, to: number): Promise<Float32Array> {
    const { info, dataStart } = this.locate(name);
    const rows = info.shape[0] ?? 1;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to && to <= rows)) throw new Error(`tensor ${name}: rows [${from}, ${to}) are outside its ${rows} rows`);
    const rowBytes = (info.end - info.begin) / rows;
    return this.readFloats(name, dataStart + info.begin + from * rowBytes, (to - from) * rowBytes);
  }

  async read(name: string): Promise<Float32Array> {
    const { info, dataStart } = this.locate(name);
    return this.readFloats(name, dataStart + info.begin, info.end - info.begin);
  }

  private async readFloats(name: string, position: number, length: number): Promise<Float32Array> {
    const { shard, info } = this.locate(name);
    if (info.dtype === 'F32') {
      // Straight into the result's memory: no second copy of a large block.
      const out = new Float32Array(length / 4);
      await this.fetcher.bytes(shard, position, position + length, new Uint8Array(out.buffer));
      return out;
    }
    if (!(info.dtype === 'F16' || info.dtype === 'BF16')) throw new Error(`tensor ${name} has dtype ${info.dtype}; only F32, F16 and BF16 weights can be converted`);
    return toFloat32(await this.fetcher.bytes(shard, position, position + length), info.dtype);
  }
}
