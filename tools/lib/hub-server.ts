// A small HTTP server that serves checkpoint folders in the Hugging Face Hub's resolve layout
// (`/<owner>/<name>/resolve/<revision>/<file>`) with Range support (`bytes=a-b`, `bytes=a-`,
// `bytes=-n`; 416 when unsatisfiable), for offline tests of the downloader and of streaming
// conversion. It sends CORS headers and answers preflights, so a page on another origin can read
// from it as from the Hub. Faults (dropped connections, stalls, truncated files, required tokens)
// are configurable and apply to range requests too.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface ServedRepo {
  dir: string;
  /** The branch served (default main); the commit id is accepted as a revision too. */
  revision?: string;
  /** Commit id returned in X-Repo-Commit. */
  commit?: string;
  /** When set, requests must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Files answered with 404 even if present. */
  hidden?: string[];
  /** Weight files are served through a 302 redirect, as the Hub does for LFS files. */
  redirectWeights?: boolean;
}

export interface Fault {
  file: string;
  /** Close the connection after sending this many body bytes (of that response), for the first `times` requests. */
  dropAfter?: number;
  /** With dropAfter: keep the connection open but silent instead of closing it. */
  stall?: boolean;
  /** Serve only the first `truncateTo` bytes of the file (with a matching Content-Length / Content-Range). */
  truncateTo?: number;
  /** Only for responses whose body holds this byte of the file (e.g. the middle of one tensor). */
  covering?: number;
  times: number;
}

export interface RequestRecord {
  path: string;
  /** GET unless said otherwise (HEAD). */
  method?: string;
  range?: string;
  authorization?: string;
  status: number;
  bodyBytes: number;
}

/** What a page on another origin may read of the answers (the Hub exposes the same). */
export const CORS_EXPOSED_HEADERS = 'Content-Range, Content-Length, Accept-Ranges, X-Repo-Commit, ETag';

/** The byte range [start, end] a Range header asks of a `total`-byte file; 'unsatisfiable' or 'malformed' otherwise. */
export function parseRange(header: string, total: number): { start: number; end: number } | 'unsatisfiable' | 'malformed' {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'malformed';
  if (m[1] === '') {
    // A suffix: the last n bytes.
    const n = Number(m[2]);
    if (n === 0 || total === 0) return 'unsatisfiable';
    return { start: Math.max(0, total - n), end: total - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? total - 1 : Number(m[2]);
  if (end < start) return 'malformed';
  if (start >= total) return 'unsatisfiable';
  return { start, end: Math.min(end, total - 1) };
}

export class HubServer {
  /** Every request but CORS preflights, in the order answered. */
  readonly requests: RequestRecord[] = [];
  /** CORS preflights (OPTIONS), kept apart so that `requests` lists what was read. */
  readonly preflights: RequestRecord[] = [];
  private readonly faults: Fault[] = [];
  private server?: Server;
  url = '';

  constructor(private readonly repos: Record<string, ServedRepo>) {}

  addFault(f: Fault): void {
    this.faults.push({ ...f });
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) res.statusCode = 500;
        res.end(String(e));
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private record(req: IncomingMessage, status: number, bodyBytes: number) {
    const method = req.method && req.method !== 'GET' ? { method: req.method } : {};
    (req.method === 'OPTIONS' ? this.preflights : this.requests).push({ path: decodeURIComponent(req.url ?? ''), ...method, range: req.headers.range, authorization: req.headers.authorization, status, bodyBytes });
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSED_HEADERS);
    const fail = (status: number) => {
      res.statusCode = status;
      res.end();
      this.record(req, status, 0);
    };
    if (req.method === 'OPTIONS') {
      // A CORS preflight: a cross-origin page asking whether it may send Range and Authorization.
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD');
      res.setHeader('Access-Control-Allow-Headers', 'Range, Authorization');
      res.setHeader('Access-Control-Max-Age', '600');
      return fail(204);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405);
    const url = new URL(req.url ?? '/', 'http://x');
    const cdn = /^\/cdn\/([^/]+)\/([^/]+)\/(.+)$/.exec(url.pathname);
    const m = cdn ?? /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m) return fail(404);
    const repoId = `${decodeURIComponent(m[1])}/${decodeURIComponent(m[2])}`;
    const repo = this.repos[repoId];
    const revision = cdn ? (repo?.revision ?? 'main') : decodeURIComponent(m[3]);
    const file = decodeURIComponent(cdn ? m[3] : m[4]);
    if (!repo) return fail(404);
    if (repo.token && !cdn && req.headers.authorization !== `Bearer ${repo.token}`) return fail(401);
    if (revision !== (repo.revision ?? 'main') && !(repo.commit && revision === repo.commit)) return fail(404);
    const path = join(repo.dir, file);
    if (file.includes('..') || repo.hidden?.includes(file) || !existsSync(path) || !statSync(path).isFile()) return fail(404);
    if (repo.commit) res.setHeader('X-Repo-Commit', repo.commit);
    if (!cdn && repo.redirectWeights && file.endsWith('.safetensors')) {
      res.statusCode = 302;
      res.setHeader('Location', `/cdn/${m[1]}/${m[2]}/${m[4]}`);
      res.end();
      this.record(req, 302, 0);
      return;
    }

    const truncation = this.faults.find((f) => f.file === file && f.times > 0 && f.truncateTo !== undefined);
    let total = statSync(path).size;
    if (truncation) {
      total = Math.min(total, truncation.truncateTo!);
      truncation.times--;
    }
    let start = 0;
    let end = total - 1;
    const range = req.headers.range;
    res.setHeader('Accept-Ranges', 'bytes');
    if (range) {
      const r = parseRange(range, total);
      if (r === 'malformed') return fail(400);
      if (r === 'unsatisfiable') {
        res.setHeader('Content-Range', `bytes */${total}`);
        return fail(416);
      }
      ({ start, end } = r);
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${total}`);
    } else {
      res.statusCode = 200;
    }
    const length = end + 1 - start;
    res.setHeader('Content-Length', String(length));
    if (req.method === 'HEAD') {
      res.end();
      this.record(req, res.statusCode, 0);
      return;
    }
    const body = new Uint8Array(length);
    const handle = await open(path, 'r');
    try {
      for (let done = 0; done < length; ) {
        const { bytesRead } = await handle.read(body, done, length - done, start + done);
        if (bytesRead === 0) throw new Error(`${path} shrank while being served`);
        done += bytesRead;
      }
    } finally {
      await handle.close();
    }
    const drop = this.faults.find(
      (f) => f.file === file && f.times > 0 && f.dropAfter !== undefined && f.truncateTo === undefined && (f.covering === undefined || (start <= f.covering && f.covering <= end)),
    );
    if (drop) {
      drop.times--;
      const sent = Math.min(drop.dropAfter!, body.byteLength);
      res.flushHeaders();
      res.write(body.subarray(0, sent), () => {
        if (drop.stall) return;
        // Give the client time to read the bytes, then cut the connection mid-body with a FIN. A
        // browser fails the body as soon as it learns of the early end, dropping bytes it has received
        // but not yet handed to the page, and a reset can discard bytes still in flight: with a cut
        // 20 ms after the write, a busy machine's browser sometimes resumed from the range's start.
        setTimeout(() => {
          res.socket?.end();
          setTimeout(() => res.socket?.destroy(), 5_000).unref();
        }, 500).unref();
      });
      this.record(req, res.statusCode, sent);
      return;
    }
    res.end(body);
    this.record(req, res.statusCode, body.byteLength);
  }
}
