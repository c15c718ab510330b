// Readers for the places a converted model folder can come from: an HTTP(S) base URL (the app's own
// /models/<name>/ or any server with CORS), a folder picked with the File System Access API, or the
// files of an <input webkitdirectory>.
import type { ModelSource } from './api-types.ts';
import { WorkerError } from '../../workers/worker-error.ts';
import { isSafeRelativePath } from './manifest-check.ts';

/** A model file that cannot be read: missing or unusable ('model-file'), or a source not reached ('network'). */
export class SourceError extends WorkerError {
  constructor(message: string, code: 'model-file' | 'network' = 'model-file') {
    super(code, message);
  }
}

export interface OpenedFile {
  stream: ReadableStream<Uint8Array>;
  /** Offset of the stream's first byte (0 when a Range request was not honoured). */
  start: number;
}

export interface SourceReader {
  /** What to show the user, and to find this source's cached model when offline. */
  label: string;
  /** True for files already on this machine: nothing to cache, no network. */
  local: boolean;
  readText(path: string): Promise<string>;
  /** The file from byte `offset` on (a Range request over HTTP). */
  open(path: string, offset: number, signal?: AbortSignal): Promise<OpenedFile>;
  /** The file itself (local sources only; remote files are streamed). Read lazily: nothing is loaded here. */
  readFile?(path: string): Promise<Blob>;
}

/** Resolves `url` against this context's location and makes it a folder URL (trailing slash). */
export function folderUrl(url: string, base = self.location.href): string {
  const u = new URL(url, base);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  u.search = '';
  u.hash = '';
  return u.href;
}

function describeHttpFailure(url: string, status: number, path: string): string {
  if (status === 404 && path !== 'manifest.json') {
    // The folder answered for its manifest, so the address is right: the folder lacks a file.
    return `${path} is missing from the model folder (${url} answered HTTP 404). The folder is incomplete; copy or convert the model again.`;
  }
  if (status === 404) return `${url} was not found (HTTP 404). Check the address; a converted model folder has a manifest.json.`;
  if (status === 401 || status === 403) return `${url} refused access (HTTP ${status}).`;
  return `${url} answered HTTP ${status}.`;
}

export function urlReader(url: string): SourceReader {
  const base = folderUrl(url);
  const fileUrl = (path: string) => {
    if (!isSafeRelativePath(path)) throw new SourceError(`refusing to read ${JSON.stringify(path)} outside the model folder`);
    return new URL(path, base).href;
  };
  const get = async (path: string, init: RequestInit) => {
    const u = fileUrl(path);
    let res: Response;
    try {
      res = await fetch(u, init);
    } catch (e) {
      // A cancelled load is not a network failure: report the cancel itself.
      if (init.signal?.aborted) throw init.signal.reason;
      const crossOrigin = new URL(u).origin !== self.location.origin;
      throw new SourceError(
        `could not fetch ${u}: ${(e as Error).message}` +
          (crossOrigin ? '. The server may be offline or may not allow cross-origin requests (CORS).' : '. The network may be offline.'),
        'network',
      );
    }
    if (!res.ok) throw new SourceError(describeHttpFailure(u, res.status, path));
    return res;
  };
  return {
    label: base,
    local: false,
    async readText(path) {
      const res = await get(path, { cache: 'no-cache' });
      // Single-page-app servers (Vite's dev server included) answer unknown paths with index.html.
      if (path.endsWith('.json') && (res.headers.get('Content-Type') ?? '').includes('text/html')) {
        throw new SourceError(`${fileUrl(path)} was not found (the server answered with a web page). Check the address; a converted model folder has a manifest.json.`);
      }
      return res.text();
    },
    async open(path, offset, signal) {
      // Weights are cached in OPFS: keeping a second copy in the HTTP cache would double the disk use.
      const headers: HeadersInit = offset > 0 ? { Range: `bytes=${offset}-` } : {};
      const res = await get(path, { cache: 'no-store', headers, signal });
      if (!res.body) throw new SourceError(`${fileUrl(path)} has no body`);
      const start = offset > 0 && res.status === 206 ? rangeStart(res.headers.get('Content-Range')) ?? 0 : 0;
      return { stream: res.body, start };
    },
  };
}

function rangeStart(contentRange: string | null): number | undefined {
  const m = contentRange?.match(/^bytes (\d+)-/);
  return m ? Number(m[1]) : undefined;
}

/** A folder of File objects addressed by relative path. */
function fileMapReader(label: string, files: Map<string, File>): SourceReader {
  const need = (path: string) => {
    const f = files.get(path);
    if (!f) throw new SourceError(`${label} has no ${path}; the folder is incomplete (compare it with its manifest.json)`);
    return f;
  };
  return {
    label,
    local: true,
    async readText(path) {
      return need(path).text();
    },
    async open(path, offset) {
      return { stream: need(path).slice(offset).stream() as ReadableStream<Uint8Array>, start: offset };
    },
    async readFile(path) {
      return need(path);
    },
  };
}

/**
 * Files of an <input webkitdirectory> selection keyed by path relative to the model folder: the
 * folder holding manifest.json (the picked folder itself or the shallowest one below it).
 */
export function filesReader(files: File[]): SourceReader {
  const rel = (f: File) => (f.webkitRelativePath || f.name).split('/');
  const manifests = files.map(rel).filter((p) => p[p.length - 1] === 'manifest.json').sort((a, b) => a.length - b.length);
  if (manifests.length === 0) throw new SourceError('the chosen folder has no manifest.json; choose a folder written by `npm run convert`');
  const root = manifests[0].slice(0, -1);
  const map = new Map<string, File>();
  for (const f of files) {
    const parts = rel(f);
    if (parts.length <= root.length || root.some((seg, i) => parts[i] !== seg)) continue;
    map.set(parts.slice(root.length).join('/'), f);
  }
  return fileMapReader(root.join('/') || 'chosen folder', map);
}

async function subfolder(dir: FileSystemDirectoryHandle, name: string): Promise<FileSystemDirectoryHandle | undefined> {
  try {
    return await dir.getDirectoryHandle(name);
  } catch {
    return undefined;
  }
}

async function hasManifest(dir: FileSystemDirectoryHandle): Promise<boolean> {
  try {
    await dir.getFileHandle('manifest.json');
    return true;
  } catch {
    return false;
  }
}

/** A folder picked with showDirectoryPicker(): the folder itself or a direct subfolder with manifest.json. */
export async function directoryReader(handle: FileSystemDirectoryHandle): Promise<SourceReader> {
  let root = handle;
  if (!(await hasManifest(root))) {
    let found: FileSystemDirectoryHandle | undefined;
    for await (const entry of (handle as unknown as { values(): AsyncIterable<FileSystemHandle> }).values()) {
      if (entry.kind === 'directory' && (await hasManifest(entry as FileSystemDirectoryHandle))) {
        found = entry as FileSystemDirectoryHandle;
        break;
      }
    }
    if (!found) throw new SourceError(`the folder "${handle.name}" has no manifest.json; choose a folder written by \`npm run convert\``);
    root = found;
  }
  const fileAt = async (path: string): Promise<File> => {
    if (!isSafeRelativePath(path)) throw new SourceError(`refusing to read ${JSON.stringify(path)} outside the model folder`);
    const parts = path.split('/');
    let dir: FileSystemDirectoryHandle | undefined = root;
    for (const seg of parts.slice(0, -1)) {
      dir = await subfolder(dir, seg);
      if (!dir) break;
    }
    try {
      if (!dir) throw new Error('missing folder');
      return await (await dir.getFileHandle(parts[parts.length - 1])).getFile();
    } catch {
      throw new SourceError(`the folder "${root.name}" has no ${path}; it is incomplete (compare it with its manifest.json)`);
    }
  };
  return {
    label: root.name,
    local: true,
    async readText(path) {
      return (await fileAt(path)).text();
    },
    async open(path, offset) {
      return { stream: (await fileAt(path)).slice(offset).stream() as ReadableStream<Uint8Array>, start: offset };
    },
    async readFile(path) {
      return fileAt(path);
    },
  };
}

/** The reader for a source (cached models are read by the cache, not here). */
export async function openSource(source: Exclude<ModelSource, { kind: 'cached' }>): Promise<SourceReader> {
  switch (source.kind) {
    case 'url':
      return urlReader(source.url);
    case 'directory':
      return directoryReader(source.handle);
    case 'files':
      return filesReader(source.files);
  }
}
