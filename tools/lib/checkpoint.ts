// A Hugging Face Molmo2 checkpoint folder on disk: its config files, its safetensors index, and a
// streaming WeightReader that reads one tensor's byte range (or a block of its rows) at a time, never
// a whole shard; byteRange() tells other readers (the encoder pool's threads) where a tensor lies.
import { existsSync } from 'node:fs';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { parseMolmo2Config, type ConfigCheck } from '../../src/molmo2/config.ts';
import { headerLength, parseHeader, type SafeDtype } from '../../src/molmo2/safetensors.ts';
import { INDEX_FILE, shardsOf, ShardedTensors, SINGLE_FILE, type LocatedTensor, type SafetensorsIndex } from '../../src/molmo2/sharded-tensors.ts';
import { isRandomWeightsIndex } from './tiny-checkpoint.ts';

type Json = Record<string, unknown>;

export { INDEX_FILE, SINGLE_FILE, type SafetensorsIndex };

/** What a checkpoint folder holds, read without touching any weight bytes. */
export interface CheckpointFolder {
  dir: string;
  configJson?: Json;
  generationJson?: Json;
  index?: SafetensorsIndex;
  /** Shard file names the checkpoint needs (from the index, or the single model.safetensors). */
  shards: string[];
  presentShards: string[];
  missingShards: string[];
  /** True when the index marks the weights as random (tiny test and demo checkpoints). */
  randomWeights: boolean;
}

async function readJsonIfPresent(path: string): Promise<Json | undefined> {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message})`);
  }
}

export async function readCheckpointFolder(dir: string): Promise<CheckpointFolder> {
  if (!existsSync(dir)) throw new Error(`checkpoint folder ${dir} does not exist`);
  const configJson = await readJsonIfPresent(join(dir, 'config.json'));
  const generationJson = await readJsonIfPresent(join(dir, 'generation_config.json'));
  const indexJson = await readJsonIfPresent(join(dir, INDEX_FILE));
  let index: SafetensorsIndex | undefined;
  if (indexJson) {
    try {
      shardsOf(indexJson as unknown as SafetensorsIndex);
    } catch (e) {
      throw new Error(`${join(dir, INDEX_FILE)}: ${(e as Error).message.replace(`${INDEX_FILE}: `, '')}`);
    }
    index = indexJson as unknown as SafetensorsIndex;
  }
  const shards = index ? [...new Set(Object.values(index.weight_map))].sort() : existsSync(join(dir, SINGLE_FILE)) ? [SINGLE_FILE] : [];
  const presentShards = shards.filter((f) => existsSync(join(dir, f)));
  return {
    dir,
    configJson,
    generationJson,
    index,
    shards,
    presentShards,
    missingShards: shards.filter((f) => !presentShards.includes(f)),
    randomWeights: isRandomWeightsIndex(index),
  };
}

export function checkConfig(folder: CheckpointFolder): ConfigCheck {
  if (!folder.configJson) return { missing: ['config.json'], errors: [`${folder.dir} has no config.json`] };
  return parseMolmo2Config(folder.configJson, folder.generationJson);
}

/** A tensor's place on disk: `length` bytes of `dtype` at `position` in the shard file `path`. */
export interface TensorBytes {
  path: string;
  position: number;
  length: number;
  dtype: SafeDtype;
  shape: number[];
}

/** A problem with one shard: truncated, unreadable header, or disagreeing with the index. */
export interface ShardProblem {
  shard: string;
  message: string;
}

/** Reads tensors from the safetensors shards of a folder, one byte range at a time. */
export class SafetensorsCheckpoint extends ShardedTensors {
  /** Open shard files (promises, so concurrent reads of one shard share one handle). */
  private readonly handles = new Map<string, Promise<FileHandle>>();

  private constructor(
    readonly dir: string,
    tensors: Map<string, LocatedTensor>,
    /** Problems found while opening; read() refuses tensors of a broken shard. */
    readonly problems: ShardProblem[],
  ) {
    super(tensors, `checkpoint ${dir}`);
  }

  /**
   * Parses every shard's header (the first 8 + n bytes) and checks each tensor's byte range against
   * the file size, so a truncated download is reported before any conversion work starts.
   */
  static async open(folder: CheckpointFolder): Promise<SafetensorsCheckpoint> {
    if (folder.shards.length === 0) throw new Error(`${folder.dir} has neither ${INDEX_FILE} nor ${SINGLE_FILE}`);
    if (folder.missingShards.length) throw new Error(`${folder.dir} is missing weight files: ${folder.missingShards.join(', ')}`);
    const tensors = new Map<string, LocatedTensor>();
    const problems: ShardProblem[] = [];
    for (const shard of folder.shards) {
      const path = join(folder.dir, shard);
      const size = (await stat(path)).size;
      let header;
      try {
        header = await readShardHeader(path, size);
      } catch (e) {
        const why = (e as Error).message;
        problems.push({ shard, message: e instanceof TruncatedShard ? `${shard} is truncated: ${why}; download it again` : `${shard}: ${why}` });
        continue;
      }
      for (const [name, info] of header.tensors) {
        if (header.dataStart + info.end > size) {
          problems.push({
            shard,
            message: `${shard} is truncated: it has ${size} bytes but tensor ${name} ends at byte ${header.dataStart + info.end}; download it again`,
          });
          break;
        }
        tensors.set(name, { shard, info, dataStart: header.dataStart });
      }
      if (folder.index) {
        for (const name of header.tensors.keys()) {
          const listed = folder.index.weight_map[name];
          if (listed !== shard) problems.push({ shard, message: `${shard} holds ${name}, but ${INDEX_FILE} lists it ${listed ? `in ${listed}` : 'nowhere'}` });
        }
      }
    }
    if (folder.index) {
      for (const [name, shard] of Object.entries(folder.index.weight_map)) {
        if (!tensors.has(name) && !problems.some((p) => p.shard === shard)) problems.push({ shard, message: `${INDEX_FILE} lists ${name} in ${shard}, but that file does not hold it` });
      }
    }
    return new SafetensorsCheckpoint(folder.dir, tensors, problems);
  }

  /** Where a tensor's bytes lie (for readers that open the shard themselves, e.g. worker threads). */
  byteRange(name: string): TensorBytes {
    const { shard, info, dataStart } = this.locate(name);
    return { path: join(this.dir, shard), position: dataStart + info.begin, length: info.end - info.begin, dtype: info.dtype, shape: [...info.shape] };
  }

  protected async readBytes(shard: string, position: number, into: Uint8Array, name: string): Promise<void> {
    await readExactly(await this.handle(shard), into, position, `${shard} (${name})`);
  }

  private handle(shard: string): Promise<FileHandle> {
    let h = this.handles.get(shard);
    if (!h) {
      h = open(join(this.dir, shard), 'r');
      this.handles.set(shard, h);
      h.catch(() => this.handles.delete(shard));
    }
    return h;
  }

  async close(): Promise<void> {
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map(async (h) => (await h.catch(() => undefined))?.close()));
  }
}

class TruncatedShard extends Error {}

async function readShardHeader(path: string, size: number) {
  const file = await open(path, 'r');
  try {
    if (size < 8) throw new TruncatedShard(`it has ${size} bytes, shorter than the 8-byte header length`);
    const first8 = new Uint8Array(8);
    await readExactly(file, first8, 0, path);
    const n = headerLength(first8);
    if (8 + n > size) throw new TruncatedShard(`it has ${size} bytes but its header alone needs ${8 + n}`);
    const bytes = new Uint8Array(8 + n);
    await readExactly(file, bytes, 0, path);
    return parseHeader(bytes);
  } finally {
    await file.close();
  }
}

const MAX_READ = 1 << 28;

/** Fills `into` from `position`, in reads of at most 256 MiB (the OS and Node limit single reads). */
async function readExactly(file: FileHandle, into: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const want = Math.min(MAX_READ, into.byteLength - done);
    const { bytesRead } = await file.read(into, done, want, position + done);
    if (bytesRead === 0) throw new Error(`${what}: unexpected end of file after ${position + done} bytes (truncated?)`);
    done += bytesRead;
  }
}

export { checkTensors, describeTensorCheck, isIgnorableExtra, type TensorCheck } from '../../src/molmo2/tensor-check.ts';
