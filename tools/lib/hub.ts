// Downloads a checkpoint from the Hugging Face Hub using only the public "resolve" URL layout
// (`<endpoint>/<repo>/resolve/<revision>/<file>`). Downloads resume from `<file>.part` with HTTP
// Range requests after a dropped connection, retry with backoff, and are size-checked before the
// file gets its final name, so a file without `.part` in the cache is always complete. Repository
// ids, URLs and HubError are those of src/molmo2/hub/location.ts, which the streaming reader shares.
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { formatBytes } from '../../src/molmo2/format-bytes.ts';
import { DEFAULT_HUB_ENDPOINT, HubError, isRepoId, isRetryableStatus, resolveUrl, type HubRepo } from '../../src/molmo2/hub/location.ts';
import { headerLength, parseHeader } from '../../src/molmo2/safetensors.ts';
import { CONFIG_FILES } from '../../src/molmo2/conversion.ts';
import { INDEX_FILE, SINGLE_FILE, readCheckpointFolder } from './checkpoint.ts';

export { HubError, isRepoId, resolveUrl };

export { CONFIG_FILES };

/** File in a cached revision folder holding the commit id the Hub resolved the revision to. */
export const COMMIT_FILE = '.commit';

export interface Progress {
  file: string;
  received: number;
  total?: number;
  bytesPerSecond: number;
  etaSeconds?: number;
}

export interface HubOptions {
  repo: string;
  revision?: string;
  /** Defaults to $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Defaults to $HF_TOKEN; sent as a Bearer token (gated repositories). */
  token?: string;
  /** Root of the download cache; files go to `<cacheDir>/<repo>/<revision>/`. */
  cacheDir: string;
  /** Attempts per file without any progress before giving up. */
  retries?: number;
  /** First retry delay; doubles on each consecutive failure. */
  backoffMs?: number;
  /** A response that sends no bytes for this long is aborted and resumed. */
  stallMs?: number;
  onProgress?: (p: Progress) => void;
  log?: (msg: string) => void;
}

export interface DownloadResult {
  dir: string;
  files: string[];
  /** Commit the Hub resolved the revision to (X-Repo-Commit), when it said. */
  commit?: string;
}

interface Resolved {
  endpoint: string;
  token?: string;
  revision: string;
  retries: number;
  backoffMs: number;
  stallMs: number;
}

function resolveOptions(o: Omit<HubOptions, 'cacheDir'>): Resolved {
  return {
    endpoint: (o.endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, ''),
    token: o.token ?? (process.env.HF_TOKEN || undefined),
    revision: o.revision ?? 'main',
    retries: o.retries ?? 6,
    backoffMs: o.backoffMs ?? 1000,
    stallMs: o.stallMs ?? 60_000,
  };
}

/** Where a repository's files are read from: the endpoint and token as the downloader resolves them ($HF_ENDPOINT, $HF_TOKEN). */
export function hubRepo(o: Omit<HubOptions, 'cacheDir'>): HubRepo {
  const r = resolveOptions(o);
  return { endpoint: r.endpoint, repo: o.repo, revision: r.revision, token: r.token };
}

export function cacheFolder(cacheDir: string, repo: string, revision: string): string {
  return join(cacheDir, ...repo.split('/'), revision.replace(/[^\w.-]/g, '_'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Downloads the config files and, unless `configOnly`, every weight shard the index lists.
 * Missing optional files are skipped; a missing config.json or index is an error.
 */
export async function downloadCheckpoint(opts: HubOptions & { configOnly?: boolean }): Promise<DownloadResult> {
  if (!isRepoId(opts.repo)) throw new HubError(`"${opts.repo}" is not a Hugging Face repository id (owner/name)`);
  const r = resolveOptions(opts);
  const dir = cacheFolder(opts.cacheDir, opts.repo, r.revision);
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  let commit: string | undefined;
  const get = async (file: string, optional: boolean, validate?: (path: string) => Promise<void>) => {
    try {
      const c = await downloadFile(opts, r, file, join(dir, file), validate);
      commit ??= c;
      files.push(file);
      return true;
    } catch (e) {
      if (optional && e instanceof HubError && e.status === 404) return false;
      throw e;
    }
  };

  for (const file of CONFIG_FILES) await get(file, file !== 'config.json');
  let shards: string[];
  if (await get(INDEX_FILE, true)) {
    shards = (await readCheckpointFolder(dir)).shards;
  } else if (opts.configOnly) {
    shards = [];
  } else {
    shards = [SINGLE_FILE];
  }
  if (!opts.configOnly) {
    for (const shard of shards) await get(shard, false, verifySafetensorsSize);
  }
  // Remember which commit the revision resolved to, for runs that find every file cached.
  const commitFile = join(dir, COMMIT_FILE);
  if (commit) await writeFile(commitFile, `${commit}\n`);
  else if (existsSync(commitFile)) commit = (await readFile(commitFile, 'utf8')).trim() || undefined;
  return { dir, files, commit };
}

/** Throws when a safetensors file is shorter or longer than its own header says. */
export async function verifySafetensorsSize(path: string): Promise<void> {
  const size = (await stat(path)).size;
  const f = await open(path, 'r');
  try {
    const first8 = new Uint8Array(8);
    await f.read(first8, 0, 8, 0);
    const n = headerLength(first8);
    if (8 + n > size) throw new Error(`header runs past the end of the ${size}-byte file`);
    const head = new Uint8Array(8 + n);
    await f.read(head, 0, 8 + n, 0);
    const h = parseHeader(head);
    const end = h.dataStart + Math.max(0, ...[...h.tensors.values()].map((t) => t.end));
    if (end !== size) throw new Error(`file has ${size} bytes but its header describes ${end}`);
  } finally {
    await f.close();
  }
}

/** Downloads one file to `dest` (resuming `dest.part`); returns the X-Repo-Commit header if sent. */
async function downloadFile(
  opts: HubOptions,
  r: Resolved,
  file: string,
  dest: string,
  validate?: (path: string) => Promise<void>,
): Promise<string | undefined> {
  if (existsSync(dest)) return undefined;
  await mkdir(dirname(dest), { recursive: true });
  const url = resolveUrl(r.endpoint, opts.repo, r.revision, file);
  const part = `${dest}.part`;
  let failures = 0;
  let refetchedAfterValidation = false;
  let commit: string | undefined;
  for (;;) {
    let outcome: 'done' | 'retry';
    try {
      const res = await transferOnce(opts, r, url, file, part);
      commit ??= res.commit;
      outcome = res.complete ? 'done' : 'retry';
      if (res.progressed) failures = 0;
    } catch (e) {
      if (e instanceof HubError && (e.fatal || (e.status !== undefined && !isRetryableStatus(e.status)))) throw e;
      opts.log?.(`${file}: ${(e as Error).message}`);
      outcome = 'retry';
    }
    if (outcome === 'done') {
      if (validate) {
        try {
          await validate(part);
        } catch (e) {
          await rm(part, { force: true });
          if (refetchedAfterValidation) throw new HubError(`${file} is still inconsistent after downloading it again: ${(e as Error).message}`);
          opts.log?.(`${file}: ${(e as Error).message}; downloading it again`);
          refetchedAfterValidation = true;
          continue;
        }
      }
      await rename(part, dest);
      return commit;
    }
    failures++;
    if (failures > r.retries) throw new HubError(`${file}: download failed ${failures} times in a row without progress; run the command again to resume`);
    const delay = r.backoffMs * 2 ** (failures - 1);
    opts.log?.(`${file}: retrying in ${(delay / 1000).toFixed(1)} s (attempt ${failures + 1})`);
    await sleep(delay);
  }
}

interface TransferResult {
  /** The .part file now holds the whole file. */
  complete: boolean;
  /** At least one byte arrived. */
  progressed: boolean;
  commit?: string;
}

/** One HTTP request: appends to `part` from its current size. */
async function transferOnce(opts: HubOptions, r: Resolved, url: string, file: string, part: string): Promise<TransferResult> {
  const have = existsSync(part) ? (await stat(part)).size : 0;
  const headers: Record<string, string> = { 'user-agent': 'molmo2-web-converter' };
  if (r.token) headers.authorization = `Bearer ${r.token}`;
  if (have > 0) headers.range = `bytes=${have}-`;
  const abort = new AbortController();
  let stallTimer: NodeJS.Timeout | undefined;
  const armStall = () => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => abort.abort(new Error(`no data for ${r.stallMs / 1000} s`)), r.stallMs);
  };
  armStall();
  try {
    let res: Response;
    try {
      res = await fetch(url, { headers, redirect: 'follow', signal: abort.signal });
    } catch (e) {
      const code = (e as { cause?: { code?: string } }).cause?.code;
      if (code === 'ENOTFOUND' || code === 'ECONNREFUSED') {
        throw new HubError(`${file}: cannot reach ${r.endpoint} (${code}); check the network connection or set HF_ENDPOINT`, undefined, true);
      }
      throw new Error(`request failed: ${describeFetchError(e)}`);
    }
    const commit = res.headers.get('x-repo-commit') ?? undefined;
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new HubError(
        `${file}: access denied (HTTP ${res.status}) by ${r.endpoint}. ${r.token ? 'The HF_TOKEN given has no access to this repository; accept its terms on the Hub page first.' : 'The repository may be gated or private: set HF_TOKEN to a Hugging Face access token.'}`,
        res.status,
      );
    }
    if (res.status === 404) {
      await res.body?.cancel();
      throw new HubError(`${file}: not found at ${url} (HTTP 404); check the repository id and --revision`, 404);
    }
    if (res.status === 416 && have > 0) {
      // The part file is at least as long as the remote file: check whether it is exactly complete.
      await res.body?.cancel();
      const total = Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
      if (total === have) return { complete: true, progressed: false, commit };
      await rm(part, { force: true });
      throw new Error(`partial download is longer than the remote file; starting over`);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw new HubError(`${file}: HTTP ${res.status} ${res.statusText} from ${url}`, res.status);
    }
    let offset = 0;
    let total: number | undefined;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== have) {
        await res.body?.cancel();
        await rm(part, { force: true });
        throw new Error(`server answered the range request with "${res.headers.get('content-range')}"; starting over`);
      }
      offset = have;
      total = m[3] === '*' ? undefined : Number(m[3]);
    } else {
      // A plain 200 carries the whole file (the server ignored or was not sent a Range header).
      const len = res.headers.get('content-length');
      total = len === null ? undefined : Number(len);
    }
    const progress = new ProgressMeter(file, offset, total, opts.onProgress);
    const out = await open(part, offset === 0 ? 'w' : 'a');
    let received = offset;
    try {
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          armStall();
          await out.write(chunk);
          received += chunk.byteLength;
          progress.update(received);
        }
      }
    } catch (e) {
      progress.finish(received);
      throw new Error(`connection lost after ${received} bytes (${describeFetchError(e)}); resuming`);
    } finally {
      await out.close();
    }
    progress.finish(received);
    const progressed = received > offset;
    if (total === undefined) return { complete: true, progressed, commit };
    if (received === total) return { complete: true, progressed, commit };
    if (received > total) {
      await rm(part, { force: true });
      throw new Error(`received ${received} bytes but the server announced ${total}; starting over`);
    }
    opts.log?.(`${file}: transfer ended at ${received} of ${total} bytes; resuming`);
    return { complete: false, progressed, commit };
  } finally {
    clearTimeout(stallTimer);
  }
}

function describeFetchError(e: unknown): string {
  const err = e as Error & { cause?: Error & { code?: string } };
  const cause = err.cause ? `: ${err.cause.code ?? err.cause.message}` : '';
  return `${err.message}${cause}`;
}

/** Reports bytes, speed and ETA at most twice a second. */
class ProgressMeter {
  private readonly started = performance.now();
  private lastReport = 0;

  constructor(
    private readonly file: string,
    private readonly startBytes: number,
    private readonly total: number | undefined,
    private readonly report?: (p: Progress) => void,
  ) {}

  update(received: number, force = false): void {
    if (!this.report) return;
    const now = performance.now();
    if (!force && now - this.lastReport < 500) return;
    this.lastReport = now;
    const seconds = Math.max(1e-3, (now - this.started) / 1000);
    const bytesPerSecond = (received - this.startBytes) / seconds;
    const etaSeconds = this.total !== undefined && bytesPerSecond > 0 ? (this.total - received) / bytesPerSecond : undefined;
    this.report({ file: this.file, received, total: this.total, bytesPerSecond, etaSeconds });
  }

  finish(received: number): void {
    this.update(received, true);
  }
}

/** A progress line for stderr: "file  1.20 GB / 5.00 GB  24%  35.1 MB/s  ETA 1m48s". */
export function formatProgress(p: Progress): string {
  const eta = p.etaSeconds === undefined ? '' : `  ETA ${Math.floor(p.etaSeconds / 60)}m${String(Math.round(p.etaSeconds % 60)).padStart(2, '0')}s`;
  const of = p.total === undefined ? '' : ` / ${formatBytes(p.total)}  ${Math.floor((100 * p.received) / Math.max(1, p.total))}%`;
  return `${p.file}  ${formatBytes(p.received)}${of}  ${formatBytes(p.bytesPerSecond)}/s${eta}`;
}
