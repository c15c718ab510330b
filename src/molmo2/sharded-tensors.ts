// The tensors of a checkpoint's safetensors shards, located from the shards' headers and read one
// byte range at a time (a whole tensor, or a block of its rows), converted to float32. Platform-free:
// subclasses say how bytes are read — files on disk (tools/lib/checkpoint.ts) or HTTP Range requests
// to the Hub (hub/remote-checkpoint.ts).
import { toFloat32, type SafeDtype, type TensorInfo } from './safetensors.ts';
import type { Shape } from './tensors.ts';
import type { WeightReader } from './weights.ts';

/** A sharded checkpoint's index; without one, the weights are one model.safetensors. */
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

/** Where a tensor lies: its shard, its header entry, and where the shard's data section starts. */
export interface LocatedTensor {
  shard: string;
  info: TensorInfo;
  dataStart: number;
}

export abstract class ShardedTensors implements WeightReader {
  protected constructor(
    protected readonly tensors: Map<string, LocatedTensor>,
    /** Names the checkpoint in messages ("checkpoint <dir>", "<owner/name>"). */
    private readonly owner: string,
  ) {}

  /** Fills `into` with the bytes at `position` of `shard` (`name`: the tensor, for messages). */
  protected abstract readBytes(shard: string, position: number, into: Uint8Array, name: string): Promise<void>;

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  protected locate(name: string): LocatedTensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.owner} has no tensor ${name}`);
    return t;
  }

  shape(name: string): number[] {
    return [...this.locate(name).info.shape];
  }

  dtype(name: string): SafeDtype {
    return this.locate(name).info.dtype;
  }

  /** Name → shape of every readable tensor. */
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

  /**
   * Rows [from, to) of a tensor viewed as [shape[0], rest] as float32: only those rows' bytes are
   * read, so a large tensor can be streamed in row blocks.
   */
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

  /** `length` bytes of tensor `name` from `position` in its shard, as float32. */
  private async readFloats(name: string, position: number, length: number): Promise<Float32Array> {
    const { shard, info } = this.locate(name);
    if (info.dtype === 'F32') {
      // Read straight into the result's memory: no second copy of a large tensor.
      const out = new Float32Array(length / 4);
      await this.readBytes(shard, position, new Uint8Array(out.buffer), name);
      return out;
    }
    if (!(info.dtype === 'F16' || info.dtype === 'BF16')) throw new Error(`tensor ${name} has dtype ${info.dtype}; only F32, F16 and BF16 weights can be converted`);
    const bytes = new Uint8Array(length);
    await this.readBytes(shard, position, bytes, name);
    return toFloat32(bytes, info.dtype);
  }
}
