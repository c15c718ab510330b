// A plain static file server on 127.0.0.1 (Node's http, not Vite), as a static host serves the built
// app: the files of one folder under a URL prefix (e.g. /some/sub/path/), index.html for a folder,
// MIME types by extension (application/wasm for onnxruntime's streaming compile, text/javascript for
// .js and .mjs), single Range requests (model weights), no fallback page for unknown paths, and CORS
// when asked (a model host). It logs every request it answered, so tests can see where files came from.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

export interface StaticServerOptions {
  /** The URL prefix the folder is served under; starts and ends with '/'. */
  base?: string;
  /** Access-Control-Allow-Origin: * (with Range allowed), as a model host needs. */
  cors?: boolean;
  /** 0 (the default): any free port. */
  port?: number;
}

export interface StaticServer {
  origin: string;
  /** The folder's address: origin + base. */
  url: string;
  /** Every request answered: method, path (with the query) and status. */
  log: { method: string; path: string; status: number }[];
  close(): Promise<void>;
}

export function serveStatic(dir: string, { base = '/', cors = false, port = 0 }: StaticServerOptions = {}): Promise<StaticServer> {
  if (!base.startsWith('/') || !base.endsWith('/')) throw new Error(`base must start and end with '/': ${base}`);
  const root = resolve(dir);
  const log: StaticServer['log'] = [];
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    const reply = (status: number, headers: Record<string, string | number> = {}, body?: string) => {
      log.push({ method: req.method ?? '', path, status });
      res.writeHead(status, headers);
      res.end(body);
    };
    if (cors) {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Allow-Headers', 'Range');
      res.setHeader('Access-Control-Expose-Headers', 'Content-Length, Content-Range');
      if (req.method === 'OPTIONS') return reply(204);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, { Allow: 'GET, HEAD' });
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(path, 'http://x').pathname);
    } catch {
      return reply(400);
    }
    if (`${pathname}/` === base) return reply(301, { Location: base });
    if (!pathname.startsWith(base)) return reply(404, { 'Content-Type': 'text/plain' }, 'Not found');
    let file = resolve(root, `.${sep}${pathname.slice(base.length)}`);
    if (file !== root && !file.startsWith(root + sep)) return reply(404, { 'Content-Type': 'text/plain' }, 'Not found');
    let size: number;
    try {
      let stat = statSync(file);
      if (stat.isDirectory()) {
        // As hosts do: a folder's address without its slash would resolve the page's relative URLs one level up.
        if (!pathname.endsWith('/')) return reply(301, { Location: `${pathname}/` });
        file = join(file, 'index.html');
        stat = statSync(file);
      }
      size = stat.size;
    } catch {
      return reply(404, { 'Content-Type': 'text/plain' }, 'Not found');
    }
    const headers: Record<string, string | number> = { 'Content-Type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream', 'Accept-Ranges': 'bytes' };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m || Number(m[1]) >= size) return reply(416, { 'Content-Range': `bytes */${size}` });
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['Content-Length'] = size === 0 ? 0 : end - start + 1;
    log.push({ method: req.method, path, status });
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || size === 0) return res.end();
    createReadStream(file, { start, end }).pipe(res);
  });
  return new Promise((resolveServer, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      resolveServer({
        origin,
        url: `${origin}${base}`,
        log,
        // Keep-alive connections would hold close() open: end them, as a host going away does.
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
