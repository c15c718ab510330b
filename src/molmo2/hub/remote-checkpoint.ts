// A checkpoint's weights read straight from the Hub, one tensor (or a block of its rows) per HTTP
// Range request: each shard's header is read once (its first 8 bytes, then the JSON), and no shard is
// ever held whole, so a 19 GB float32 checkpoint converts in the memory of a few blocks.
// Platform-free: the browser's Hub conversion and `npm run convert` (streaming) both use it.
import { headerLength, parseHeader, type SafeDtype } from '../safetensors.ts';
import { INDEX_FILE, shardsOf, ShardedTensors, type LocatedTensor, type SafetensorsIndex } from '../sharded-tensors.ts';
import { fileUrl, type HubRepo } from './location.ts';
import { RangeFetcher, type RangeFetchOptions } from './range-fetch.ts';

/** Where a tensor's bytes lie in its shard on the Hub. */
export interface RemoteTensorBytes {
  shard: string;
  url: string;
  position: number;
  length: number;
  dtype: SafeDtype;
  shape: number[];
}

export class RemoteCheckpoint extends ShardedTensors {
  private constructor(
    readonly fetcher: RangeFetcher,
    tensors: Map<string, LocatedTensor>,
    /** Problems found while opening (a shard that disagrees with the index). */
    readonly problems: string[],
  ) {
    super(tensors, fetcher.repo.repo);
  }

  /** Reads the header of every shard (two small Range requests each) and maps every tensor. */
  static async open(repo: HubRepo, index: SafetensorsIndex | undefined, opts: RangeFetchOptions = {}): Promise<RemoteCheckpoint> {
    const fetcher = new RangeFetcher(repo, (f) => fileUrl(repo, f), opts);
    const tensors = new Map<string, LocatedTensor>();
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

  byteRange(name: string): RemoteTensorBytes {
    const { shard, info, dataStart } = this.locate(name);
    return { shard, url: fileUrl(this.fetcher.repo, shard), position: dataStart + info.begin, length: info.end - info.begin, dtype: info.dtype, shape: [...info.shape] };
  }

  protected async readBytes(shard: string, position: number, into: Uint8Array): Promise<void> {
    await this.fetcher.bytes(shard, position, position + into.byteLength, into);
  }
}
