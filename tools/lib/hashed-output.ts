// Output files of a conversion, written into the model folder with their SHA-256 computed as the
// bytes go out (manifest.json then needs no second read of gigabytes of weights). External-data
// chunks stream through sinks: small pieces are gathered into larger writes.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ChunkSink } from '../../src/molmo2/onnx/external-data.ts';
import type { ManifestFile } from '../../src/molmo2/manifest.ts';

/** Pieces below this size are gathered before they are written. */
const GATHER = 1 << 20;

export interface OutputStats {
  bytes: number;
  /** Main-thread time spent hashing, and writing, in seconds. */
  hashS: number;
  writeS: number;
}

export class HashedOutput {
  /** path → { path, bytes, sha256 } of every file written and closed. */
  readonly files = new Map<string, ManifestFile>();
  readonly stats: OutputStats = { bytes: 0, hashS: 0, writeS: 0 };

  /** `resolvePath` maps a relative path to the file to write (and refuses paths outside the folder). */
  constructor(private readonly resolvePath: (relPath: string) => string) {}

  private hash(h: Hash, bytes: Uint8Array): void {
    const t = performance.now();
    h.update(bytes);
    this.stats.hashS += (performance.now() - t) / 1000;
    this.stats.bytes += bytes.byteLength;
  }

  /** Writes a whole file. */
  async writeFile(relPath: string, bytes: Uint8Array): Promise<void> {
    const full = this.resolvePath(relPath);
    const h = createHash('sha256');
    this.hash(h, bytes);
    await mkdir(dirname(full), { recursive: true });
    const t = performance.now();
    await writeFile(full, bytes);
    this.stats.writeS += (performance.now() - t) / 1000;
    this.files.set(relPath, { path: relPath, bytes: bytes.byteLength, sha256: h.digest('hex') });
  }

  /** A sink that writes one file in order, hashing as it goes. */
  async open(relPath: string): Promise<ChunkSink> {
    const full = this.resolvePath(relPath);
    await mkdir(dirname(full), { recursive: true });
    const file = openSync(full, 'w');
    const h = createHash('sha256');
    const gather = new Uint8Array(GATHER);
    let gathered = 0;
    let size = 0;
    let closed = false;
    // Synchronous writes: a page-cache copy of a job's output takes well under a millisecond, and
    // the threads have their next jobs queued meanwhile.
    const out = async (bytes: Uint8Array) => {
      const t = performance.now();
      writeAll(file, bytes);
      this.stats.writeS += (performance.now() - t) / 1000;
    };
    const drain = async () => {
      if (gathered === 0) return;
      const n = gathered;
      gathered = 0;
      await out(gather.subarray(0, n));
    };
    return {
      write: async (bytes) => {
        this.hash(h, bytes);
        size += bytes.byteLength;
        if (gathered + bytes.byteLength <= GATHER && bytes.byteLength < GATHER / 4) {
          gather.set(bytes, gathered);
          gathered += bytes.byteLength;
          return;
        }
        await drain();
        await out(bytes);
      },
      close: async () => {
        if (closed) return;
        closed = true;
        try {
          await drain();
        } finally {
          closeSync(file);
        }
        this.files.set(relPath, { path: relPath, bytes: size, sha256: h.digest('hex') });
      },
      abort: async () => {
        if (closed) return;
        closed = true;
        closeSync(file);
      },
    };
  }
}

function writeAll(file: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(file, bytes, done, bytes.byteLength - done);
}
