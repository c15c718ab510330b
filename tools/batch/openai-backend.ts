// The batch tool's server backend: each question is one POST {server}/chat/completions to a vLLM (or
// other OpenAI-compatible) server running Molmo2, with the frames we sampled sent as JPEGs in the
// request shape of src/molmo2/openai-chat.ts. Transient failures (network errors, dropped
// connections, timeouts, 429 and 5xx) are retried with exponential backoff and jitter; other 4xx
// answers are the request's fault and are not.
import {
  chatAnswerText,
  chatCompletionRequest,
  errorBodyMessage,
  httpErrorMessage,
  serverBaseUrl,
} from '../../src/molmo2/openai-chat.ts';
import type { BackendAnswer, BackendQuestion, BatchBackend } from './types.ts';

export interface OpenAiBackendOptions {
  /** The server's base URL (…/v1); "localhost:8000" is read as http://localhost:8000/v1. */
  server: string;
  /** The model name the server serves (GET /models). */
  model: string;
  /** Questions in flight at once (default 4). */
  concurrency?: number;
  /** Per-request limit (default 120 000 ms). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 4). */
  retries?: number;
  /** Bearer token; default: env OPENAI_API_KEY, then VLLM_API_KEY. */
  apiKey?: string;
  log?: (m: string) => void;
  /** For tests: the wait between attempts. */
  sleep?: (ms: number) => Promise<void>;
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
// A server asking for more than this is treated as asking for this.
const RETRY_AFTER_CAP_MS = 120_000;

/** Why one attempt failed, and whether another attempt may succeed. */
interface AttemptFailure {
  cause: string;
  retry: boolean;
  retryAfterMs?: number;
}

export async function openOpenAiBackend(o: OpenAiBackendOptions): Promise<BatchBackend> {
  const base = serverBaseUrl(o.server);
  if (!base.ok) throw new Error(`The server address “${o.server}” is not usable: ${base.message}`);
  const url = base.url;
  const concurrency = o.concurrency ?? 4;
  const timeoutMs = o.timeoutMs ?? 120_000;
  const retries = o.retries ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a whole number ≥ 1, got ${concurrency}.`);
  if (!(timeoutMs > 0)) throw new Error(`The request timeout must be > 0 ms, got ${timeoutMs}.`);
  if (!Number.isInteger(retries) || retries < 0) throw new Error(`retries must be a whole number ≥ 0, got ${retries}.`);
  const apiKey = o.apiKey ?? process.env.OPENAI_API_KEY ?? process.env.VLLM_API_KEY;
  const log = o.log ?? (() => {});
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;

  await checkModel(url, o.model, headers, timeoutMs);
  let closed = false;

  async function ask(q: BackendQuestion): Promise<BackendAnswer> {
    if (closed) throw new Error('The server backend is closed.');
    const body = JSON.stringify(
      chatCompletionRequest({
        model: o.model,
        question: q.question,
        mode: q.mode,
        maxNewTokens: q.maxNewTokens,
        frames: q.frames.map((f, i) => {
          if (!f.jpeg) throw new Error(`Frame ${i + 1} (${f.timeS} s) has no JPEG bytes; the server backend sends JPEGs.`);
          return { timeS: q.mode === 'video' ? f.timeS - q.clipStartS : f.timeS, jpegBase64: Buffer.from(f.jpeg).toString('base64') };
        }),
      }),
    );
    const endpoint = `${url}/chat/completions`;
    const attempts = retries + 1;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(q.signal);
      const started = performance.now();
      const result = await postOnce(endpoint, body, headers, timeoutMs, q.signal);
      if ('text' in result) {
        return { text: result.text, timingMs: { requestMs: Math.round(performance.now() - started), attempts: attempt } };
      }
      if (!result.retry) throw new Error(`The server at ${url} did not answer the question: ${result.cause}`);
      if (attempt >= attempts) {
        throw new Error(`No answer from the server at ${url} after ${attempts} attempt${attempts === 1 ? '' : 's'}; the last failure: ${result.cause}`);
      }
      const backoff = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
      // Jitter spreads the retries of concurrent questions apart.
      const wait = result.retryAfterMs ?? Math.round(backoff * (0.5 + Math.random() * 0.5));
      log(`server: attempt ${attempt} of ${attempts} failed (${result.cause}); retrying in ${(wait / 1000).toFixed(1)} s`);
      await abortable(sleep(wait), q.signal);
    }
  }

  return {
    kind: 'vllm',
    model: { id: o.model, dtype: 'server' },
    frameFormat: 'jpeg',
    concurrency,
    ask,
    close: async () => {
      closed = true;
    },
  };
}

/** One POST: the answer text, or why it failed. Throws only when `signal` aborted. */
async function postOnce(
  endpoint: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ text: string } | AttemptFailure> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let status: number;
  let text: string;
  let retryAfter: string | null;
  try {
    const res = await fetch(endpoint, { method: 'POST', headers, body, signal: combined });
    status = res.status;
    retryAfter = res.headers.get('retry-after');
    text = await res.text();
  } catch (e) {
    throwIfAborted(signal);
    if (timeout.aborted) return { cause: `no answer within ${formatSeconds(timeoutMs)}`, retry: true };
    return { cause: networkCause(e), retry: true };
  }
  if (status >= 200 && status < 300) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { cause: `the reply is not JSON: ${text.slice(0, 200)}`, retry: false };
    }
    try {
      return { text: chatAnswerText(json) };
    } catch (e) {
      return { cause: (e as Error).message, retry: false };
    }
  }
  const cause = httpErrorMessage(status, text);
  if (status === 429 || status >= 500) return { cause, retry: true, retryAfterMs: retryAfterMs(retryAfter) };
  return { cause, retry: false };
}

/** GET /models: the server answers and serves the model, else a message that says what to do. */
async function checkModel(url: string, model: string, headers: Record<string, string>, timeoutMs: number): Promise<void> {
  let status: number;
  let text: string;
  try {
    const res = await fetch(`${url}/models`, { headers, signal: AbortSignal.timeout(Math.min(timeoutMs, 30_000)) });
    status = res.status;
    text = await res.text();
  } catch (e) {
    const cause = e instanceof Error && e.name === 'TimeoutError' ? 'it did not answer in time' : networkCause(e);
    throw new Error(`Could not reach the server at ${url} (${cause}). Is it running, and is the address right?`);
  }
  if (status < 200 || status >= 300) {
    const hint = status === 401 || status === 403 ? ' Set OPENAI_API_KEY or VLLM_API_KEY to the server’s API key.' : '';
    throw new Error(`The server at ${url} did not list its models: ${httpErrorMessage(status, text)}.${hint}`);
  }
  let ids: string[];
  try {
    const json = JSON.parse(text) as { data?: { id?: unknown }[] };
    if (!Array.isArray(json.data)) throw new Error(errorBodyMessage(json) ?? 'no "data" list');
    ids = json.data.map((m) => String(m.id));
  } catch (e) {
    throw new Error(`The server at ${url} is not an OpenAI-compatible server (GET /models: ${(e as Error).message}).`);
  }
  if (!ids.includes(model)) {
    const served = ids.length > 0 ? `it serves ${ids.map((id) => `“${id}”`).join(', ')}` : 'it serves no models';
    throw new Error(`The server at ${url} does not serve the model “${model}”; ${served}. Pass one of those as the model.`);
  }
}

/** A plain cause for a failed fetch (undici puts the system error in `cause`). */
function networkCause(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  const code = err.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'the connection was dropped';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name was not found';
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'the connection timed out';
  return err.cause?.message ?? err.message ?? String(e);
}

/** Retry-After in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(RETRY_AFTER_CAP_MS, Math.max(0, Math.round(ms)));
}

function formatSeconds(ms: number): string {
  return ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('The question was interrupted.');
}

/** `p`, or the abort of `signal`, whichever comes first. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  throwIfAborted(signal);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('The question was interrupted.'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
