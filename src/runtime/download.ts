// Gets every file a model variant needs, each verified against the manifest's SHA-256: from the OPFS
// cache when present and intact, else from the source (streamed into the cache, resumed with Range
// requests after an interruption). A corrupt download is fetched once more, then reported.
import type { ManifestFile } from '../molmo2/manifest.ts';
import { isQuotaError, type BlobWriter, type ModelCache } from './opfs-cache.ts';
import type { LoadProgressTracker } from './progress.ts';
import { WorkerError } from '../../workers/worker-error.ts';
import { SourceError, type SourceReader } from './sources.ts';

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
  bytes: Map<string, Uint8Array>;
  fromCache: number;
  fromSource: number;
  /** Paths now held in the cache. */
  cached: string[];
  /** Set when the cache ran out of space and later files were kept in memory only. */
  quotaExceeded: boolean;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export async function fetchModelFiles(o: FetchFilesOptions): Promise<FetchedFiles> {
  const result: FetchedFiles = { bytes: new Map(), fromCache: 0, fromSource: 0, cached: [], quotaExceeded: false };
  let cache = o.cache;
  for (const file of o.files) {
    o.signal?.throwIfAborted();
    // 1. The cache, when it holds an intact copy.
    const hit = await cache?.get(file.sha256);
    if (hit) {
      o.progress.setState(file.path, 'verifying');
      o.onUpdate();
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if (bytes.byteLength === file.bytes && (await sha256Hex(bytes)) === file.sha256) {
        o.progress.complete(file.path, 'cached');
        o.onUpdate();
        result.bytes.set(file.path, bytes);
        result.fromCache++;
        result.cached.push(file.path);
        continue;
      }
      // Corrupted in the cache (disk error, partial write, tampering): drop it and fetch it again.
      await cache!.remove(file.sha256);
    }
    if (!o.reader) throw new SourceError(`${file.path} is missing from the browser cache and there is no source to download it from`);

    // 2. The source; a hash mismatch is fetched once more from scratch before it is reported.
    let bytes: Uint8Array | undefined;
    for (let attempt = 0; attempt < 2 && !bytes; attempt++) {
      if (attempt > 0) o.progress.restartFile(file.path);
      let got: { bytes: Uint8Array; inCache: boolean };
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
      const actual = got.bytes.byteLength === file.bytes ? await sha256Hex(got.bytes) : `${got.bytes.byteLength} bytes`;
      if (actual === file.sha256) {
        bytes = got.bytes;
        if (got.inCache) result.cached.push(file.path);
      } else {
        if (got.inCache) await cache!.remove(file.sha256);
        if (attempt === 1) {
          // A file cut short ends its stream cleanly, so its bytes sit in `.part`: nothing of it may stay.
          await cache?.removePartial(file.sha256);
          o.progress.setState(file.path, 'failed');
          o.onUpdate();
          const short = got.bytes.byteLength !== file.bytes;
          throw new IntegrityError(
            short
              ? `${file.path} from ${o.reader.label} is cut short: the server sent ${got.bytes.byteLength} of its ${file.bytes} bytes (twice). ` +
                  'The folder on the server is incomplete; copy or convert the model again.'
              : `${file.path} from ${o.reader.label} is corrupt: expected ${file.bytes} bytes with SHA-256 ${file.sha256}, got SHA-256 ${actual} ` +
                  '(twice). The folder on the server does not match its manifest.json; convert or copy the model again.',
          );
        }
      }
    }
    o.progress.complete(file.path, 'done');
    o.onUpdate();
    result.bytes.set(file.path, bytes!);
    result.fromSource++;
  }
  return result;
}

/** Reads one file from the source into the cache (resuming a partial download) or into memory. */
async function readFromSource(o: FetchFilesOptions, file: ManifestFile, cache: ModelCache | undefined, fresh: boolean): Promise<{ bytes: Uint8Array; inCache: boolean }> {
  const reader = o.reader!;
  o.progress.setState(file.path, 'downloading');
  o.onUpdate();
  if (reader.local && reader.readBytes) {
    // Already on this machine: no need to keep a second copy in the cache.
    const bytes = await reader.readBytes(file.path);
    o.progress.advance(file.path, bytes.byteLength, false);
    return { bytes, inCache: false };
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
): Promise<{ bytes: Uint8Array; inCache: boolean }> {
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
    if (size !== file.bytes) return { bytes: new Uint8Array(size), inCache: false };
    await cache!.commitPartial(file.sha256);
    const stored = await cache!.get(file.sha256);
    return { bytes: new Uint8Array(await stored!.arrayBuffer()), inCache: true };
  }
  return { bytes: concat(chunks, size), inCache: false };
}
