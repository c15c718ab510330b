// A small OpenAI-compatible server on 127.0.0.1 for tests of the batch tool's vLLM backend and of the
// web app's server option. It records every request, answers CORS preflights, serves GET /v1/models
// and POST /v1/chat/completions (plain or `stream: true`), and can be told to fail the next requests
// (an HTTP status, a slow answer, a dropped connection). It is a test double: its answers are a
// function of the request (default: one point per frame received), not a model.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { formatTimestamp } from '../../src/molmo2/prompt.ts';

export type Fault =
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  | { kind: 'slow'; ms: number }
  | { kind: 'drop' } /* destroy the socket mid-request */;

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The JSON body parsed, the raw text when it is not JSON, undefined when empty. */
  body: unknown;
  at: number;
}

export interface OpenAiTestServer {
  /** http://127.0.0.1:PORT/v1 */
  url: string;
  requests: RecordedRequest[];
  /** Faults for the next requests, one per request, in order. */
  queueFaults(...f: Fault[]): void;
  close(): Promise<void>;
}

export const DEFAULT_TEST_MODELS = ['allenai/Molmo2-4B'];

/** One frame of a chat request as the test server read it. */
export interface ReceivedFrame {
  /** Video: frames_indices[k] / fps (s); images: undefined. */
  timeS?: number;
  bytes: Buffer;
}

/** What a chat request asked, read back from the request shape of src/molmo2/openai-chat.ts. */
export interface ReceivedQuestion {
  mode: 'video' | 'images';
  /** The last user message's text. */
  question: string;
  frames: ReceivedFrame[];
}

/** Reads a chat-completions body back into frames and question; throws on a shape it does not know. */
export function readChatRequest(body: any): ReceivedQuestion {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  if (messages.length === 0) throw new Error('no messages');
  const textOf = (content: any): string =>
    typeof content === 'string' ? content : (content as any[]).filter((p) => p?.type === 'text').map((p) => p.text).join('');
  const parts: any[] = messages.flatMap((m) => (Array.isArray(m.content) ? m.content : []));
  const question = textOf(messages[messages.length - 1].content);
  const video = parts.filter((p) => p?.type === 'video_url');
  if (video.length > 0) {
    const m = /^data:video\/jpeg;base64,(.*)$/s.exec(String(video[0].video_url?.url));
    if (!m) throw new Error('video_url is not a data:video/jpeg;base64 URL');
    const meta = body.media_io_kwargs?.video ?? {};
    const fps = Number(meta.fps ?? 1);
    const chunks = m[1].split(',');
    const indices: number[] = meta.frames_indices ?? chunks.map((_, i) => i);
    return { mode: 'video', question, frames: chunks.map((c, i) => ({ timeS: indices[i] / fps, bytes: Buffer.from(c, 'base64') })) };
  }
  const frames = parts
    .filter((p) => p?.type === 'image_url')
    .map((p) => {
      const m = /^data:image\/[a-z]+;base64,(.*)$/s.exec(String(p.image_url?.url));
      if (!m) throw new Error('image_url is not a base64 data URL');
      return { bytes: Buffer.from(m[1], 'base64') };
    });
  return { mode: 'images', question, frames };
}

/** A number 0–999 that stands for a frame's bytes, so tests can tell which frame arrived where. */
export function frameMark(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) % 1000;
  return sum;
}

/**
 * The default answer: one Molmo2 point per frame received, in order — key = the frame's timestamp
 * (video) or image number (images), id = its position, x = frameMark of its bytes, y = 500 — and the
 * question as the label. E.g. `<points coords="0.0 1 123 500;0.5 2 456 500">Point to the dog.</points>`.
 */
export function defaultAnswer(body: unknown): string {
  const q = readChatRequest(body);
  if (q.frames.length === 0) return 'There are none.';
  const groups = q.frames.map((f, i) => {
    const key = q.mode === 'video' ? formatTimestamp(f.timeS ?? 0) : String(i + 1);
    return `${key} ${i + 1} ${String(frameMark(f.bytes)).padStart(3, '0')} 500`;
  });
  return `<points coords="${groups.join(';')}">${q.question}</points>`;
}

export async function startOpenAiTestServer(opts: { answer?: (body: any) => string; models?: string[] } = {}): Promise<OpenAiTestServer> {
  const answer = opts.answer ?? defaultAnswer;
  const models = opts.models ?? DEFAULT_TEST_MODELS;
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let completions = 0;

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) sendJson(res, 500, errorBody(`test server failed: ${String(e)}`, 500));
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const path = (req.url ?? '/').split('?')[0];
    requests.push({ method: req.method ?? '', path, headers: { ...req.headers }, body, at: Date.now() });

    cors(req, res);
    // Preflights never take a fault: the browser sends them on its own.
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Max-Age': '600' }).end();
      return;
    }

    const fault = faults.shift();
    if (fault?.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'Content-Type': 'application/json', ...fault.headers });
      res.end(fault.body ?? JSON.stringify(errorBody(`injected failure ${fault.status}`, fault.status)));
      return;
    }
    if (fault?.kind === 'slow') {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          timers.delete(t);
          resolve();
        }, fault.ms);
        timers.add(t);
      });
      if (res.destroyed || req.socket.destroyed) return; // the client gave up meanwhile
    }

    if (req.method === 'GET' && path === '/v1/models') {
      const created = Math.floor(Date.now() / 1000);
      sendJson(res, 200, {
        object: 'list',
        data: models.map((id) => ({ id, object: 'model', created, owned_by: 'vllm', root: id, parent: null, max_model_len: 16384 })),
      });
      return;
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      if (typeof body !== 'object' || body === null) {
        sendJson(res, 400, errorBody('The request body is not JSON.', 400));
        return;
      }
      const b = body as Record<string, any>;
      if (!models.includes(b.model)) {
        sendJson(res, 404, errorBody(`The model \`${String(b.model)}\` does not exist.`, 404, 'NotFoundError'));
        return;
      }
      let content: string;
      try {
        content = answer(b);
      } catch (e) {
        sendJson(res, 400, errorBody(`Could not read the request: ${e instanceof Error ? e.message : String(e)}`, 400));
        return;
      }
      const id = `chatcmpl-test-${++completions}`;
      if (b.stream === true) streamAnswer(res, id, b.model, content);
      else {
        sendJson(res, 200, {
          id,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: b.model,
          choices: [{ index: 0, message: { role: 'assistant', content, tool_calls: [] }, logprobs: null, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: content.length, total_tokens: 1 + content.length },
        });
      }
      return;
    }
    sendJson(res, 404, errorBody(`No route ${req.method} ${path}`, 404, 'NotFoundError'));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    queueFaults: (...f) => void faults.push(...f),
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function cors(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? 'authorization, content-type');
  // Retry-After must be readable by a page that honours it.
  res.setHeader('Access-Control-Expose-Headers', 'Retry-After');
}

/** vLLM's error body (vllm/entrypoints/openai ErrorResponse). */
function errorBody(message: string, code: number, type = code >= 500 ? 'InternalServerError' : 'BadRequestError') {
  return { error: { message, type, param: null, code } };
}

function sendJson(res: ServerResponse, status: number, json: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(json));
}

/** Server-sent events as vLLM sends them: a role chunk, content chunks, a finish chunk, [DONE]. */
function streamAnswer(res: ServerResponse, id: string, model: string, content: string): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: Record<string, unknown>, finish: string | null) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  res.write(chunk({ role: 'assistant', content: '' }, null));
  for (let i = 0; i < content.length; i += 8) res.write(chunk({ content: content.slice(i, i + 8) }, null));
  res.write(chunk({}, 'stop'));
  res.end('data: [DONE]\n\n');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
