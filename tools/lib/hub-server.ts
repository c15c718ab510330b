// A small HTTP server that serves checkpoint folders in the Hugging Face Hub's resolve layout
// (`/<owner>/<name>/resolve/<revision>/<file>`) with Range support, for offline tests of the
// downloader. Faults (dropped connections, truncated files, required tokens) are configurable.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface ServedRepo {
  dir: string;
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
  /** Close the connection after sending this many body bytes, for the first `times` requests. */
  dropAfter?: number;
  /** With dropAfter: keep the connection open but silent instead of closing it. */
  stall?: boolean;
  /** Serve only the first `truncateTo` bytes of the file (with a matching Content-Length). */
  truncateTo?: number;
  times: number;
}

export interface RequestRecord {
  path: string;
  range?: string;
  authorization?: string;
  status: number;
  bodyBytes: number;
}

export class HubServer {
  readonly requests: RequestRecord[] = [];
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
        res.statusCode = 500;
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
    this.requests.push({ path: decodeURIComponent(req.url ?? ''), range: req.headers.range, authorization: req.headers.authorization, status, bodyBytes });
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://x');
    const cdn = /^\/cdn\/([^/]+)\/([^/]+)\/(.+)$/.exec(url.pathname);
    const m = cdn ?? /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const fail = (status: number) => {
      res.statusCode = status;
      res.end();
      this.record(req, status, 0);
    };
    if (!m) return fail(404);
    const repoId = `${decodeURIComponent(m[1])}/${decodeURIComponent(m[2])}`;
    const repo = this.repos[repoId];
    const revision = cdn ? (repo?.revision ?? 'main') : decodeURIComponent(m[3]);
    const file = decodeURIComponent(cdn ? m[3] : m[4]);
    if (!repo) return fail(404);
    if (repo.token && !cdn && req.headers.authorization !== `Bearer ${repo.token}`) return fail(401);
    if (revision !== (repo.revision ?? 'main')) return fail(404);
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

    const fault = this.faults.find((f) => f.file === file && f.times > 0);
    let data = new Uint8Array(await readFile(path));
    if (fault?.truncateTo !== undefined) {
      data = data.subarray(0, fault.truncateTo);
      fault.times--;
    }
    const total = data.byteLength;
    let start = 0;
    const range = req.headers.range;
    res.setHeader('Accept-Ranges', 'bytes');
    if (range) {
      const r = /^bytes=(\d+)-$/.exec(range);
      if (!r) return fail(400);
      start = Number(r[1]);
      if (start >= total) {
        res.statusCode = 416;
        res.setHeader('Content-Range', `bytes */${total}`);
        res.end();
        this.record(req, 416, 0);
        return;
      }
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${total - 1}/${total}`);
    } else {
      res.statusCode = 200;
    }
    const body = data.subarray(start);
    res.setHeader('Content-Length', String(body.byteLength));
    if (fault?.dropAfter !== undefined && fault.truncateTo === undefined) {
      fault.times--;
      const sent = Math.min(fault.dropAfter, body.byteLength);
      res.flushHeaders();
      res.write(body.subarray(0, sent), () => {
        // Give the bytes time to reach the client, then cut the connection mid-body.
        if (!fault.stall) setTimeout(() => res.socket?.destroy(), 20);
      });
      this.record(req, res.statusCode, sent);
      return;
    }
    res.end(body);
    this.record(req, res.statusCode, body.byteLength);
  }
}
