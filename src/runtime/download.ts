// Gets every file a model variant needs, each verified against the manifest's SHA-256: from the OPFS
// cache when present and intact, else from the source (streamed into the cache, resumed with Range
// requests after an interruption). A corrupt download is fetched once more, then reported.
// Files are handed on as Blobs — the cache's or the picked folder's File, read lazily — so the worker
// never holds the whole model in memory: the sessions read the weights from them (graph by graph).
import type { ManifestFile } from '../molmo2/manifest.ts';
import { isQuotaError, type BlobWriter, type ModelCache } from './opfs-cache.ts';
import type { LoadProgressTracker } from './progress.ts';
import { WorkerError } from '../../workers/worker-error.ts';
import { SourceError, type SourceReader } from './sources.ts';
import { sha256OfBlob } from './sha256.ts';

/** A file whose bytes do not match the manifest's SHA-256, twice. */
export class IntegrityError extends WorkerError {
  constructor(message: string) {
    super('model-file', message);
  }
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Files up to this size are hashed whole by WebCrypto (fast); larger ones as a stream (one chunk in memory). */
const WHOLE_HASH_BYTES = 256 * 2 ** 20;

/** SHA-256 of a file, without ever holding more than WHOLE_HASH_BYTES of it. */
export async function sha256OfFile(file: Blob): Promise<string> {
  return file.size <= WHOLE_HASH_BYTES ? sha256Hex(new Uint8Array(await file.arrayBuffer())) : sha256OfBlob(file);
}

export interface FetchFilesOptions {
  /** Where to read missing files from; undefined when loading a cached model without a source. */
  reader?: SourceReader;
  files: ManifestFile[];
  /** Undefined to keep everything in memory (cache disabled or unavailable). */
  cache?: ModelCache;
  progress: LoadProgressTracker;
  /** Called after every chunk or state change (the caller throttles). */
  onUpdate: () => void;
  signal?: AbortSignal;
  /** Network retries (with Range resume) per file before giving up. */
  retries?: number;
}

export interface FetchedFiles {
  /** Each file, verified: a File of the cache or of the picked folder, or a Blob of what was downloaded. */
  files: Map<string, Blob>;
  fromCache: number;
  fromSource: number;
  /** Paths now held in the cache. */
  cached: string[];
  /** Set when the cache ran out of space and later files were kept in memory only. */
  quotaExceeded: boolean;
}

export async function fetchModelFiles(o: FetchFilesOptions): Promise<FetchedFiles> {
  const result: FetchedFiles = { files: new Map(), fromCache: 0, fromSource: 0, cached: [], quotaExceeded: false };
  let cache = o.cache;
  for (const file of o.files) {
    o.signal?.throwIfAborted();
    // 1. The cache, when it holds an intact copy.
    const hit = await cache?.get(file.sha256);
    if (hit) {
      o.progress.setState(file.path, 'verifying');
      o.onUpdate();
      if (hit.size === file.bytes && (await sha256OfFile(hit)) === file.sha256) {
        o.progress.complete(file.path, 'cached');
        o.onUpdate();
        result.files.set(file.path, hit);
        result.fromCache++;
        result.cached.push(file.path);
        continue;
      }
      // Corrupted in the cache (disk error, partial write, tampering): drop it and fetch it again.
      await cache!.remove(file.sha256);
    }
    if (!o.reader) throw new SourceError(`${file.path} is missing from the browser cache and there is no source to download it from`);

    // 2. The source; a hash mismatch is fetched once more from scratch before it is reported.
    let verified: Blob | undefined;
    for (let attempt = 0; attempt < 2 && !verified; attempt++) {
      if (attempt > 0) o.progress.restartFile(file.path);
      let got: Got;
      try {
        got = await readFromSource(o, file, cache, attempt > 0);
      } catch (e) {
        if (!isQuotaError(e) || !cache) throw e;
        // Out of storage: keep this and later files in memory only.
        await cache.removePartial(file.sha256);
        result.quotaExceeded = true;
        cache = undefined;
        o.progress.restartFile(file.path);
        got = await readFromSource(o, file, undefined, true);
      }
      o.progress.setState(file.path, 'verifying');
      o.onUpdate();
      const actual = got.size === file.bytes && got.blob ? await sha256OfFile(got.blob) : `${got.size} bytes`;
      if (actual === file.sha256) {
        verified = got.blob;
        if (got.inCache) result.cached.push(file.path);
      } else {
        if (got.inCache) await cache!.remove(file.sha256);
        if (attempt === 1) {
          // A file cut short ends its stream cleanly, so its bytes sit in `.part`: nothing of it may stay.
          await cache?.removePartial(file.sha256);
          o.progress.setState(file.path, 'failed');
          o.onUpdate();
          const short = got.size !== file.bytes;
          throw new IntegrityError(
            short
              ? `${file.path} from ${o.reader.label} is cut short: the server sent ${got.size} of its ${file.bytes} bytes (twice). ` +
                  'The folder on the server is incomplete; copy or convert the model again.'
              : `${file.path} from ${o.reader.label} is corrupt: expected ${file.bytes} bytes with SHA-256 ${file.sha256}, got SHA-256 ${actual} ` +
                  '(twice). The folder on the server does not match its manifest.json; convert or copy the model again.',
          );
        }
      }
    }
    o.progress.complete(file.path, 'done');
    o.onUpdate();
    result.files.set(file.path, verified!);
    result.fromSource++;
  }
  return result;
}

/** A file as read from the source: its size, and the file itself unless it was cut short in the cache. */
interface Got {
  blob?: Blob;
  size: number;
  inCache: boolean;
}

/** Reads one file from the source into the cache (resuming a partial download) or into memory. */
async function readFromSource(o: FetchFilesOptions, file: ManifestFile, cache: ModelCache | undefined, fresh: boolean): Promise<Got> {
  const reader = o.reader!;
  o.progress.setState(file.path, 'downloading');
  o.onUpdate();
  if (reader.local && reader.readFile) {
    // Already on this machine: no need to keep a second copy in the cache.
    const blob = await reader.readFile(file.path);
    o.progress.advance(file.path, blob.size, false);
    return { blob, size: blob.size, inCache: false };
  }
  if (fresh) await cache?.removePartial(file.sha256);
  let have = cache ? await cache.partialSize(file.sha256) : 0;
  if (have > file.bytes) have = 0;
  if (have > 0) o.progress.advance(file.path, have, false);
  const chunks: Uint8Array[] = [];
  const retries = o.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    let writer: BlobWriter | undefined;
    try {
      // Open first: a file the server lacks (404) must not leave an empty `.part` behind.
      const opened = await reader.open(file.path, have, o.signal);
      writer = cache ? await cache.partialWriter(file.sha256, have) : undefined;
      if (opened.start !== have) {
        // The server ignored the Range request: start the file over.
        if (writer) {
          await writer.abort();
          await cache!.removePartial(file.sha256);
        }
        chunks.length = 0;
        o.progress.restartFile(file.path);
        have = 0;
        if (opened.start !== 0) throw new SourceError(`${file.path}: the server answered a different byte range than requested`);
        return await streamInto(opened.stream, cache ? await cache.partialWriter(file.sha256, 0) : undefined, chunks, 0, o, file, cache);
      }
      return await streamInto(opened.stream, writer, chunks, have, o, file, cache);
    } catch (e) {
      await writer?.abort().catch(() => {});
      if (isQuotaError(e) || o.signal?.aborted || e instanceof SourceError || attempt >= retries) throw e;
      // A dropped connection: resume from what was stored.
      have = cache ? await cache.partialSize(file.sha256) : chunks.reduce((s, c) => s + c.byteLength, 0);
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }
}

async function streamInto(
  stream: ReadableStream<Uint8Array>,
  writer: Awaited<ReturnType<ModelCache['partialWriter']>> | undefined,
  chunks: Uint8Array[],
  start: number,
  o: FetchFilesOptions,
  file: ManifestFile,
  cache: ModelCache | undefined,
): Promise<Got> {
  let size = start;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (writer) await writer.write(value);
      else chunks.push(value);
      size += value.byteLength;
      o.progress.advance(file.path, value.byteLength, true);
      o.onUpdate();
    }
  } finally {
    reader.releaseLock();
  }
  if (writer) {
    await writer.close();
    if (size !== file.bytes) return { size, inCache: false };
    await cache!.commitPartial(file.sha256);
    const stored = await cache!.get(file.sha256);
    if (!stored) throw new SourceError(`${file.path} could not be read back from the browser cache`);
    return { blob: stored, size, inCache: true };
  }
  // Not cached: the downloaded chunks become one Blob, which the browser keeps outside the worker's heap.
  return { blob: new Blob(chunks as Uint8Array<ArrayBuffer>[]), size, inCache: false };
}
