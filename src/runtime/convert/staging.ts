// The Origin Private File System folder of one browser conversion, built so that an interrupted
// conversion (closed tab, dropped network, cancel) resumes where it stopped and never looks complete:
//
//   molmo2-web/convert/<job id>/job.json       what is converted (key) and how far each file got
//   molmo2-web/convert/<job id>/files/<path>   the output files as they are written
//
// External-data files are appended in order and hashed as they go; every few seconds (or 64 MiB)
// the file is flushed and job.json records how many of its bytes are durable. A resumed run starts
// each file at that length (re-hashing the bytes already there) and the graph builders skip the
// weight blocks that lie inside it (ChunkSink.stored). Only dedicated workers have the synchronous
// access handles this needs; the conversion worker is one.
import type { ChunkSink } from '../../molmo2/onnx/external-data.ts';
import type { ManifestFile } from '../../molmo2/manifest.ts';
import { Sha256 } from '../sha256.ts';

/** What makes two runs the same conversion: a resumed run must agree on every field. */
export interface ConversionKey {
  endpoint: string;
  repo: string;
  /** The revision asked for, and the commit it resolved to (when the Hub said). */
  revision: string;
  commit?: string;
  dtype: string;
  target: string;
  converterVersion: string;
  maxChunkBytes: number;
}

interface JobRecord {
  key: ConversionKey;
  startedAt: string;
  /** Files finished (closed) with their size and hash. */
  finished: Record<string, ManifestFile>;
  /** Durable length of files still being written. */
  durable: Record<string, number>;
  /** Bytes the job expects to write (for progress of an unfinished job in the list). */
  expectedBytes?: number;
}

/** An unfinished conversion found in storage. */
export interface PendingConversion {
  id: string;
  key: ConversionKey;
  startedAt: string;
  /** Bytes of output already durable. */
  bytes: number;
  expectedBytes?: number;
}

interface SyncHandle {
  read(buffer: Uint8Array, options?: { at?: number }): number;
  write(buffer: Uint8Array, options?: { at?: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}

const FLUSH_BYTES = 64 << 20;
const FLUSH_MS = 1000;
const READ_BACK = 4 << 20;

async function syncHandle(file: FileSystemFileHandle): Promise<SyncHandle> {
  const open = (file as unknown as { createSyncAccessHandle?: () => Promise<SyncHandle> }).createSyncAccessHandle;
  if (typeof open !== 'function') throw new Error('this browser cannot write files in a worker (no FileSystemSyncAccessHandle)');
  try {
    return await open.call(file);
  } catch (e) {
    if (e instanceof DOMException && e.name === 'NoModificationAllowedError') throw new Error('this conversion is already running in another tab or window');
    throw e;
  }
}

function writeAll(h: SyncHandle, bytes: Uint8Array, at: number): void {
  let done = 0;
  while (done < bytes.byteLength) done += h.write(bytes.subarray(done), { at: at + done });
}

function hex(digest: Uint8Array): string {
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export async function jobId(key: ConversionKey): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify(key)));
  return hex(new Uint8Array(digest).subarray(0, 8));
}

async function convertRoot(): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  const top = await root.getDirectoryHandle('molmo2-web', { create: true });
  return top.getDirectoryHandle('convert', { create: true });
}

function entries(dir: FileSystemDirectoryHandle): AsyncIterable<[string, FileSystemHandle]> {
  return (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries();
}

/** Unfinished conversions in this browser's storage, newest first. */
export async function pendingConversions(): Promise<PendingConversion[]> {
  const out: PendingConversion[] = [];
  for await (const [name, handle] of entries(await convertRoot())) {
    if (handle.kind !== 'directory') continue;
    try {
      const file = await (await (handle as FileSystemDirectoryHandle).getFileHandle('job.json')).getFile();
      const rec = JSON.parse(await file.text()) as JobRecord;
      const bytes = Object.values(rec.finished).reduce((s, f) => s + f.bytes, 0) + Object.values(rec.durable).reduce((s, n) => s + n, 0);
      out.push({ id: name, key: rec.key, startedAt: rec.startedAt, bytes, expectedBytes: rec.expectedBytes });
    } catch {
      // A folder without a readable job.json holds nothing resumable.
      await removeConversion(name);
    }
  }
  return out.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

export async function removeConversion(id: string): Promise<void> {
  await (await convertRoot()).removeEntry(id, { recursive: true }).catch(() => {});
}

export class ConversionStaging {
  /** Output bytes an earlier run left that this run keeps. */
  resumedBytes = 0;
  /** Output bytes in the files so far (resumed ones included). */
  bytesWritten = 0;
  private closed = false;

  private constructor(
    readonly id: string,
    private readonly dir: FileSystemDirectoryHandle,
    private readonly files: FileSystemDirectoryHandle,
    private readonly jobFile: SyncHandle,
    private readonly record: JobRecord,
  ) {}

  /** Opens the folder of this conversion, resuming an earlier run of the same key if there is one. */
  static async open(key: ConversionKey, expectedBytes: number): Promise<ConversionStaging> {
    const id = await jobId(key);
    const dir = await (await convertRoot()).getDirectoryHandle(id, { create: true });
    const jobFile = await syncHandle(await dir.getFileHandle('job.json', { create: true }));
    let record: JobRecord | undefined;
    try {
      const size = jobFile.getSize();
      if (size > 0) {
        const bytes = new Uint8Array(size);
        jobFile.read(bytes, { at: 0 });
        const old = JSON.parse(new TextDecoder().decode(bytes)) as JobRecord;
        if (JSON.stringify(old.key) === JSON.stringify(key)) record = old;
      }
    } catch {
      record = undefined; // unreadable: start over
    }
    if (!record) {
      await dir.removeEntry('files', { recursive: true }).catch(() => {});
      record = { key, startedAt: new Date().toISOString(), finished: {}, durable: {} };
    }
    record.expectedBytes = expectedBytes;
    const staging = new ConversionStaging(id, dir, await dir.getDirectoryHandle('files', { create: true }), jobFile, record);
    staging.save();
    return staging;
  }

  private save(): void {
    if (this.closed) return; // a sink given up after the run ended: its bytes stay as last recorded
    const bytes = new TextEncoder().encode(JSON.stringify(this.record));
    this.jobFile.truncate(0);
    writeAll(this.jobFile, bytes, 0);
    this.jobFile.flush();
  }

  private async fileHandle(relPath: string, create: boolean): Promise<FileSystemFileHandle> {
    const parts = relPath.split('/');
    let dir = this.files;
    for (const p of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(p, { create });
    return dir.getFileHandle(parts.at(-1)!, { create });
  }

  /** Writes a whole (small) file: graphs and copied configs. */
  async writeFile(relPath: string, bytes: Uint8Array): Promise<void> {
    const h = await syncHandle(await this.fileHandle(relPath, true));
    try {
      h.truncate(0);
      writeAll(h, bytes, 0);
      h.flush();
    } finally {
      h.close();
    }
    this.bytesWritten += bytes.byteLength;
    this.record.finished[relPath] = { path: relPath, bytes: bytes.byteLength, sha256: new Sha256().update(bytes).hex() };
    delete this.record.durable[relPath];
    this.save();
  }

  /** A sink for one external-data file that keeps (and re-hashes) the durable bytes of an earlier run. */
  async openChunk(relPath: string): Promise<ChunkSink> {
    const h = await syncHandle(await this.fileHandle(relPath, true));
    const size = h.getSize();
    const done = this.record.finished[relPath];
    const keep = done && done.bytes === size ? size : Math.min(size, this.record.durable[relPath] ?? 0);
    h.truncate(keep);
    const sha = new Sha256();
    if (!(done && done.bytes === keep)) {
      const buf = new Uint8Array(READ_BACK);
      for (let at = 0; at < keep; at += READ_BACK) {
        const n = Math.min(READ_BACK, keep - at);
        h.read(buf.subarray(0, n), { at });
        sha.update(buf.subarray(0, n));
      }
    }
    delete this.record.finished[relPath];
    this.record.durable[relPath] = keep;
    this.resumedBytes += keep;
    this.bytesWritten += keep;
    this.save();
    let at = keep;
    let unflushed = 0;
    let lastFlush = performance.now();
    const flush = () => {
      h.flush();
      this.record.durable[relPath] = at;
      this.save();
      unflushed = 0;
      lastFlush = performance.now();
    };
    // Also when writes stop (a stalled download): what was written is durable within a second.
    const timer = setInterval(() => {
      if (unflushed > 0 && performance.now() - lastFlush >= FLUSH_MS) flush();
    }, FLUSH_MS);
    const closeHandle = () => {
      clearInterval(timer);
      h.close();
    };
    return {
      stored: keep,
      write: async (bytes) => {
        writeAll(h, bytes, at);
        sha.update(bytes);
        at += bytes.byteLength;
        this.bytesWritten += bytes.byteLength;
        unflushed += bytes.byteLength;
        if (unflushed >= FLUSH_BYTES || performance.now() - lastFlush >= FLUSH_MS) flush();
      },
      close: async () => {
        h.flush();
        closeHandle();
        this.record.finished[relPath] = { path: relPath, bytes: at, sha256: done && done.bytes === keep ? done.sha256 : sha.hex() };
        delete this.record.durable[relPath];
        this.save();
      },
      abort: async () => {
        // Keeps what was written for the next run.
        flush();
        closeHandle();
      },
    };
  }

  /** Every finished file with its size and hash. */
  finishedFiles(): ManifestFile[] {
    return Object.values(this.record.finished);
  }

  /** The staged file itself (for moving it into the model cache). */
  async handle(relPath: string): Promise<FileSystemFileHandle> {
    return this.fileHandle(relPath, false);
  }

  /** Lets go of job.json (the folder stays for a later run). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.jobFile.close();
  }

  /** Closes and deletes the folder. */
  async remove(): Promise<void> {
    this.close();
    await removeConversion(this.id);
  }
}
