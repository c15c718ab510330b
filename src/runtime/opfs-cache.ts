// Browser cache of model files in the Origin Private File System. Files are stored by their SHA-256
// (from the manifest), so a re-converted model only downloads what changed and two models share equal
// files. A partly downloaded file is kept as `<sha>.part` and resumed with a Range request.
//
//   molmo2-web/blobs/<sha256>         verified file contents
//   molmo2-web/blobs/<sha256>.part    interrupted download
//   molmo2-web/models/<id>.json       one record per cached manifest (what to list, delete, load offline)
import type { Manifest } from '../molmo2/manifest.ts';
import type { CachedModel } from './api-types.ts';

export interface CacheRecord {
  id: string;
  name: string;
  /** The source's label (base URL) it was downloaded from. */
  source: string;
  savedAt: string;
  manifest: Manifest;
  /** Paths (manifest-relative) of the files this model has in the cache. */
  paths: string[];
}

/** Appends bytes to a file; `close()` flushes. */
export interface BlobWriter {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

export function isQuotaError(e: unknown): boolean {
  return e instanceof DOMException && (e.name === 'QuotaExceededError' || e.code === 22);
}

export class ModelCache {
  private constructor(
    private readonly blobs: FileSystemDirectoryHandle,
    private readonly models: FileSystemDirectoryHandle,
  ) {}

  /** The cache, or undefined where OPFS is unavailable (e.g. some private browsing modes). */
  static async open(): Promise<ModelCache | undefined> {
    try {
      const root = await navigator.storage.getDirectory();
      const top = await root.getDirectoryHandle('molmo2-web', { create: true });
      return new ModelCache(await top.getDirectoryHandle('blobs', { create: true }), await top.getDirectoryHandle('models', { create: true }));
    } catch {
      return undefined;
    }
  }

  private async fileHandle(name: string, create = false): Promise<FileSystemFileHandle | undefined> {
    try {
      return await this.blobs.getFileHandle(name, { create });
    } catch (e) {
      if (create) throw e;
      return undefined;
    }
  }

  /** The complete cached file for this hash, if any (not yet verified). */
  async get(sha256: string): Promise<File | undefined> {
    return (await this.fileHandle(sha256))?.getFile();
  }

  /** Bytes already downloaded into `<sha>.part`. */
  async partialSize(sha256: string): Promise<number> {
    const f = await (await this.fileHandle(`${sha256}.part`))?.getFile();
    return f?.size ?? 0;
  }

  /** A writer appending to `<sha>.part` (truncated to `keep` bytes first). */
  async partialWriter(sha256: string, keep: number): Promise<BlobWriter> {
    const handle = (await this.fileHandle(`${sha256}.part`, true))!;
    const sync = (handle as unknown as { createSyncAccessHandle?: () => Promise<SyncHandle> }).createSyncAccessHandle;
    if (typeof sync === 'function' && 'WorkerGlobalScope' in globalThis) {
      const h = await sync.call(handle);
      h.truncate(keep);
      let at = keep;
      return {
        async write(chunk) {
          let written = 0;
          while (written < chunk.byteLength) written += h.write(chunk.subarray(written), { at: at + written });
          at += chunk.byteLength;
        },
        async close() {
          h.flush();
          h.close();
        },
        async abort() {
          h.close();
        },
      };
    }
    const w = await handle.createWritable({ keepExistingData: true });
    await w.truncate(keep);
    await w.seek(keep);
    return {
      write: (chunk) => w.write(chunk as Uint8Array<ArrayBuffer>),
      close: () => w.close(),
      abort: () => w.abort(),
    };
  }

  /** Renames a finished `<sha>.part` to `<sha>`. */
  async commitPartial(sha256: string): Promise<void> {
    const part = await this.fileHandle(`${sha256}.part`);
    if (!part) throw new Error(`internal: no partial download for ${sha256}`);
    const move = (part as unknown as { move?: (name: string) => Promise<void> }).move;
    if (typeof move === 'function') {
      await this.remove(sha256);
      await move.call(part, sha256);
      return;
    }
    // Browsers without FileSystemHandle.move: copy, then drop the partial file.
    const data = await (await part.getFile()).arrayBuffer();
    const w = await (await this.fileHandle(sha256, true))!.createWritable();
    await w.write(data);
    await w.close();
    await this.blobs.removeEntry(`${sha256}.part`);
  }

  /**
   * Takes a finished file written elsewhere in OPFS (a browser conversion) as the blob `sha256`: moved,
   * not copied; dropped when the cache already holds that blob.
   */
  async adopt(sha256: string, file: FileSystemFileHandle): Promise<void> {
    if (await this.fileHandle(sha256)) {
      await (file as unknown as { remove?: () => Promise<void> }).remove?.();
      return;
    }
    const move = (file as unknown as { move?: (dir: FileSystemDirectoryHandle, name: string) => Promise<void> }).move;
    if (typeof move === 'function') {
      await move.call(file, this.blobs, sha256);
      return;
    }
    const w = await (await this.fileHandle(sha256, true))!.createWritable();
    await (await file.getFile()).stream().pipeTo(w);
  }

  async remove(sha256: string): Promise<void> {
    await this.blobs.removeEntry(sha256).catch(() => {});
  }

  async removePartial(sha256: string): Promise<void> {
    await this.blobs.removeEntry(`${sha256}.part`).catch(() => {});
  }

  async records(): Promise<CacheRecord[]> {
    const out: CacheRecord[] = [];
    for await (const [name, handle] of entries(this.models)) {
      if (handle.kind !== 'file' || !name.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(await (await (handle as FileSystemFileHandle).getFile()).text()) as CacheRecord);
      } catch {
        // A record cut short by a crash: drop it, its blobs are collected with the next delete.
        await this.models.removeEntry(name).catch(() => {});
      }
    }
    return out.sort((a, b) => b.savedAt.localeCompare(a.savedAt));
  }

  async record(id: string): Promise<CacheRecord | undefined> {
    return (await this.records()).find((r) => r.id === id);
  }

  /** The most recent record downloaded from `source`. */
  async recordForSource(source: string): Promise<CacheRecord | undefined> {
    return (await this.records()).find((r) => r.source === source);
  }

  /** Saves (or extends) the record of a manifest with the paths now cached. */
  async saveRecord(rec: Omit<CacheRecord, 'savedAt'>): Promise<void> {
    const old = await this.record(rec.id);
    const paths = [...new Set([...(old?.paths ?? []), ...rec.paths])].sort();
    const full: CacheRecord = { ...rec, paths, savedAt: new Date().toISOString() };
    const w = await (await this.models.getFileHandle(`${rec.id}.json`, { create: true })).createWritable();
    await w.write(JSON.stringify(full));
    await w.close();
  }

  async list(): Promise<CachedModel[]> {
    const sizes = await this.blobSizes();
    return (await this.records()).map((r) => {
      const sha = new Map(r.manifest.files.map((f) => [f.path, f.sha256]));
      const bytes = r.paths.reduce((s, p) => s + (sizes.get(sha.get(p) ?? '') ?? 0), 0);
      return { id: r.id, name: r.manifest.name, source: r.source, bytes, savedAt: r.savedAt, randomWeights: r.manifest.architecture.randomWeights };
    });
  }

  /** Deletes a model's record and every blob no other cached model uses. */
  async delete(id: string): Promise<boolean> {
    const all = await this.records();
    const target = all.find((r) => r.id === id);
    if (!target) return false;
    await this.models.removeEntry(`${id}.json`);
    const keep = new Set<string>();
    for (const r of all) {
      if (r.id === id) continue;
      const sha = new Map(r.manifest.files.map((f) => [f.path, f.sha256]));
      for (const p of r.paths) keep.add(sha.get(p) ?? '');
    }
    const sizes = await this.blobSizes(true);
    for (const name of sizes.keys()) {
      const sha = name.replace(/\.part$/, '');
      if (!keep.has(sha) && target.manifest.files.some((f) => f.sha256 === sha)) await this.blobs.removeEntry(name).catch(() => {});
    }
    return true;
  }

  private async blobSizes(includePartial = false): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for await (const [name, handle] of entries(this.blobs)) {
      if (handle.kind !== 'file' || (!includePartial && name.endsWith('.part'))) continue;
      out.set(name, (await (handle as FileSystemFileHandle).getFile()).size);
    }
    return out;
  }
}

interface SyncHandle {
  write(buffer: Uint8Array, options?: { at?: number }): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}

function entries(dir: FileSystemDirectoryHandle): AsyncIterable<[string, FileSystemHandle]> {
  return (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries();
}

/** The cache id of a manifest: the first 16 hex digits of the SHA-256 of its text. */
export async function manifestId(manifestText: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(manifestText));
  return [...new Uint8Array(digest)].slice(0, 8).map((b) => b.toString(16).padStart(2, '0')).join('');
}
