// Reads byte ranges of files over HTTP with Range requests. A connection that drops or stalls
// mid-body is resumed from the byte reached, with backoff between attempts; only a run of attempts
// without a single new byte gives up. Platform-free (fetch, AbortController).
import { HubError, hubRefusal, isRetryableStatus, type HubRepo } from './location.ts';

export interface RangeFetchOptions {
  /** Attempts in a row without progress before giving up (default 6). */
  retries?: number;
  /** First retry delay; doubles on each consecutive failure (default 1 s). */
  backoffMs?: number;
  /** A response that sends no bytes for this long is aborted and resumed (default 60 s). */
  stallMs?: number;
  /** Called with the number of new bytes as they arrive. */
  onBytes?: (n: number) => void;
  log?: (msg: string) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });

/**
 * How long a file's download address (where the Hub's resolve URL redirected) is used directly: the
 * Hub limits requests to its resolve URLs, and a conversion reads thousands of blocks of each shard.
 * The Hub signs these addresses for an hour.
 */
const DIRECT_URL_MS = 10 * 60_000;

export class RangeFetcher {
  /** Where each file's resolve URL redirected to, and until when to use it. */
  private readonly direct = new Map<string, { url: string; until: number }>();
  /** Bytes received, over all requests. */
  bytesReceived = 0;
  /** The commit the Hub resolved the revision to (X-Repo-Commit), once an answer said. */
  commit?: string;

  constructor(
    readonly repo: HubRepo,
    private readonly urlOf: (file: string) => string,
    private readonly opts: RangeFetchOptions = {},
  ) {}

  private headers(range?: string): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.repo.token) h.authorization = `Bearer ${this.repo.token}`;
    if (range) h.range = range;
    return h;
  }

  /** A small whole file (config, tokenizer, index) as text; undefined when the Hub has no such file and `optional`. */
  async text(file: string, optional = false): Promise<string | undefined> {
    const res = await this.request(file, undefined);
    if (res.status === 404 && optional) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw hubRefusal(this.repo, file, res.status);
    }
    const text = await res.text();
    this.bytesReceived += new TextEncoder().encode(text).byteLength;
    return text;
  }

  /** Bytes [start, end) of `file`, into a new buffer (or `into`, which must hold end − start bytes). */
  async bytes(file: string, start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = into ?? new Uint8Array(end - start);
    if (out.byteLength !== end - start) throw new Error(`${file}: a ${out.byteLength}-byte buffer for ${end - start} bytes`);
    const retries = this.opts.retries ?? 6;
    const backoff = this.opts.backoffMs ?? 1000;
    const pos = { have: 0 };
    let failures = 0;
    while (pos.have < out.byteLength) {
      const before = pos.have;
      try {
        await this.transfer(file, start, end, out, pos);
      } catch (e) {
        if (this.opts.signal?.aborted) throw this.opts.signal.reason;
        if (e instanceof HubError && e.fatal) throw e;
        this.opts.log?.(`${file}: ${(e as Error).message}`);
      }
      if (pos.have === out.byteLength) break;
      failures = pos.have > before ? 1 : failures + 1;
      if (failures > retries) throw new HubError(`${file}: reading bytes ${start}–${end} failed ${failures} times in a row without progress`);
      const delay = backoff * 2 ** (failures - 1);
      this.opts.log?.(`${file}: resuming at byte ${start + pos.have} in ${(delay / 1000).toFixed(1)} s`);
      await sleep(delay, this.opts.signal);
    }
    return out;
  }

  private async request(file: string, range: string | undefined, signal?: AbortSignal): Promise<Response> {
    const direct = this.direct.get(file);
    const viaDirect = direct !== undefined && direct.until > Date.now();
    const url = viaDirect ? direct.url : this.urlOf(file);
    let res: Response;
    try {
      // The token goes to the Hub only, never to the storage host it redirects to.
      const headers = viaDirect ? (range ? { range } : {}) : this.headers(range);
      res = await (this.opts.fetch ?? fetch)(url, { headers, redirect: 'follow', signal: signal ?? this.opts.signal });
    } catch (e) {
      if (this.opts.signal?.aborted) throw this.opts.signal.reason;
      const code = (e as { cause?: { code?: string } }).cause?.code;
      if (code === 'ENOTFOUND') throw new HubError(`cannot reach ${this.repo.endpoint} (${code}): check the address and the network connection`, undefined, true);
      throw new Error(`request for ${file} failed: ${(e as Error).message}`);
    }
    this.commit ??= res.headers.get('x-repo-commit') ?? undefined;
    if (viaDirect && (res.status === 401 || res.status === 403 || res.status === 404 || res.status === 410)) {
      // The signed download address expired: ask the Hub again.
      await res.body?.cancel();
      this.direct.delete(file);
      return this.request(file, range, signal);
    }
    if (!viaDirect && res.redirected && res.url && res.url !== url) this.direct.set(file, { url: res.url, until: Date.now() + DIRECT_URL_MS });
    return res;
  }

  /** One request for what is still missing of [start, end); `pos.have` counts the bytes of `out` filled. */
  private async transfer(file: string, start: number, end: number, out: Uint8Array, pos: { have: number }): Promise<void> {
    const from = start + pos.have;
    const stall = new AbortController();
    const onAbort = () => stall.abort(this.opts.signal?.reason);
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => stall.abort(new Error(`no data for ${(this.opts.stallMs ?? 60_000) / 1000} s`)), this.opts.stallMs ?? 60_000);
    };
    arm();
    try {
      const res = await this.request(file, `bytes=${from}-${end - 1}`, stall.signal);
      if (res.status !== 206) {
        await res.body?.cancel();
        if (res.status === 200) throw new HubError(`${this.repo.endpoint} ignored the Range request for ${file}; it cannot be streamed`, 200, true);
        throw isRetryableStatus(res.status) ? new Error(`HTTP ${res.status}`) : hubRefusal(this.repo, file, res.status);
      }
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== from || Number(m[2]) > end - 1) {
        await res.body?.cancel();
        throw new HubError(`${file}: asked for bytes ${from}–${end - 1}, the server sent "${res.headers.get('content-range')}"`, 206, true);
      }
      if (!res.body) return;
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          arm();
          if (pos.have + value.byteLength > out.byteLength) throw new HubError(`${file}: the server sent more than the ${end - from} bytes asked for`, 206, true);
          out.set(value, pos.have);
          pos.have += value.byteLength;
          this.bytesReceived += value.byteLength;
          this.opts.onBytes?.(value.byteLength);
        }
      } catch (e) {
        await reader.cancel().catch(() => {});
        if (e instanceof HubError) throw e;
        throw new Error(`connection lost after ${pos.have} of ${out.byteLength} bytes (${(e as Error).message})`);
      } finally {
        reader.releaseLock();
      }
    } finally {
      clearTimeout(timer);
      this.opts.signal?.removeEventListener('abort', onAbort);
    }
  }
}
