// One question sent to an OpenAI-compatible answer server (a vLLM running Molmo2): the frames
// encoded as JPEG here, off the page's thread, the request built by src/molmo2/openai-chat.ts (the
// batch tool builds the same one), one POST, and the answer text. Every failure — the server down or
// refusing this page's origin, an error status with the server's own message, no answer in time, a
// reply that is not a chat completion — becomes a WorkerError with a plain message that names the
// server; a cancel ends the request at once.
import { chatAnswerText, chatCompletionRequest, ChatResponseError, httpErrorMessage, type ChatFrame } from '../src/molmo2/openai-chat.ts';
import type { ImageInput } from '../src/runtime/api-types.ts';
import type { ServerAnswer, ServerAskApi, ServerAskEvent, ServerAskRequest } from './server-ask-api.ts';
import { WorkerError } from './worker-error.ts';

export const DEFAULT_TIMEOUT_MS = 5 * 60_000;
const JPEG_QUALITY = 0.92;

/** The frame as a JPEG file (the bitmap is closed: it was transferred here for this alone). */
export async function encodeJpeg(img: ImageInput): Promise<Uint8Array> {
  const canvas = new OffscreenCanvas(img.width, img.height);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new WorkerError('unsupported', 'This browser cannot draw frames off the page, so it cannot encode them as JPEG.');
  if ('close' in img) {
    ctx.drawImage(img, 0, 0);
    img.close();
  } else {
    ctx.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
  }
  const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: JPEG_QUALITY });
  return new Uint8Array(await blob.arrayBuffer());
}

export function base64(bytes: Uint8Array): string {
  let s = '';
  // In slices: one spread of a whole frame would overflow the argument limit.
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export interface ServerAskDeps {
  encode?: (img: ImageInput) => Promise<Uint8Array>;
  fetch?: typeof fetch;
}

/** Why a request ended early: the user stopped it, or the server took too long. */
type StopReason = 'cancel' | 'timeout';

export function serverAskApi(deps: ServerAskDeps = {}): ServerAskApi {
  const encode = deps.encode ?? encodeJpeg;
  const doFetch = deps.fetch ?? ((input, init) => fetch(input, init));
  let running: { controller: AbortController; stop?: StopReason } | undefined;
  // A request this worker's policy refused is reported as an event, apart from the failed fetch.
  const refused = new Set<string>();
  globalThis.addEventListener?.('securitypolicyviolation', (e) => refused.add(String((e as SecurityPolicyViolationEvent).blockedURI)));

  return {
    async ask(req: ServerAskRequest, onEvent?: (e: ServerAskEvent) => void): Promise<ServerAnswer> {
      if (running) throw new WorkerError('busy', 'A question is already on its way to the server; wait for it or stop it.');
      const job: { controller: AbortController; stop?: StopReason } = { controller: new AbortController() };
      running = job;
      const host = hostOf(req.server.baseUrl);
      const cancelled = (encodeMs: number, serverMs = 0): ServerAnswer => ({ text: '', stoppedBy: 'cancel', encodeMs, serverMs });
      try {
        const t0 = performance.now();
        const frames: ChatFrame[] = [];
        for (const [i, f] of req.frames.entries()) {
          if (job.stop) return cancelled(performance.now() - t0);
          frames.push({ timeS: f.timeS, jpegBase64: base64(await encode(f.image)) });
          onEvent?.({ type: 'stage', stage: 'encode', done: i + 1, total: req.frames.length });
        }
        let body: string;
        try {
          body = JSON.stringify(chatCompletionRequest({ model: req.server.model, question: req.question, mode: req.mode, frames, maxNewTokens: req.maxNewTokens, ...(req.history?.length ? { history: req.history } : {}) }));
        } catch (e) {
          throw new WorkerError('bad-input', (e as Error).message);
        }
        const encodeMs = performance.now() - t0;
        if (job.stop) return cancelled(encodeMs);
        onEvent?.({ type: 'stage', stage: 'server' });

        const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
        const timer = setTimeout(() => {
          job.stop ??= 'timeout';
          job.controller.abort();
        }, timeoutMs);
        const t1 = performance.now();
        try {
          let res: Response;
          try {
            res = await doFetch(`${req.server.baseUrl}/chat/completions`, {
              method: 'POST',
              headers: { 'Content-Type': 'application/json', ...(req.server.apiKey ? { Authorization: `Bearer ${req.server.apiKey}` } : {}) },
              body,
              signal: job.controller.signal,
              // Nothing but the question: no cookies, no referrer.
              credentials: 'omit',
              referrerPolicy: 'no-referrer',
              cache: 'no-store',
            });
          } catch (e) {
            if (job.stop === 'cancel') return cancelled(encodeMs, performance.now() - t1);
            if (job.stop === 'timeout') throw timedOut(host, timeoutMs);
            throw await unreachable(host, req.server.baseUrl, refused, e);
          }
          let text: string;
          try {
            text = await res.text();
          } catch (e) {
            if (job.stop === 'cancel') return cancelled(encodeMs, performance.now() - t1);
            if (job.stop === 'timeout') throw timedOut(host, timeoutMs);
            throw new WorkerError('network', `The connection to ${host} broke before its answer arrived (${(e as Error).message}).`);
          }
          if (job.stop === 'cancel') return cancelled(encodeMs, performance.now() - t1);
          if (!res.ok) throw new WorkerError('network', `${host} did not answer the question: ${httpErrorMessage(res.status, text)}`);
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            throw new WorkerError('network', `${host} answered with something that is not JSON, so not a chat completion: “${text.slice(0, 120)}”.`);
          }
          try {
            return { text: chatAnswerText(json), stoppedBy: 'eos', encodeMs, serverMs: performance.now() - t1 };
          } catch (e) {
            if (e instanceof ChatResponseError) throw new WorkerError('network', `${host}: ${e.message}`);
            throw e;
          }
        } finally {
          clearTimeout(timer);
        }
      } finally {
        if (running === job) running = undefined;
      }
    },

    cancel() {
      if (!running) return;
      running.stop ??= 'cancel';
      running.controller.abort();
    },
  };
}

function hostOf(baseUrl: string): string {
  try {
    return new URL(baseUrl).host;
  } catch {
    return baseUrl;
  }
}

function timedOut(host: string, ms: number): WorkerError {
  const s = Math.round(ms / 1000);
  return new WorkerError('network', `${host} did not answer within ${s >= 60 ? `${Math.round(s / 60)} min` : `${s} s`}. Try fewer frames or a shorter answer limit, or check that the server is working.`);
}

/**
 * A request that never got a response. The browser does not say why (a server that is down, a wrong
 * address and a server refusing this page's origin look the same), except for this app's own policy,
 * which reports a refusal as an event shortly after.
 */
async function unreachable(host: string, baseUrl: string, refused: Set<string>, e: unknown): Promise<WorkerError> {
  await new Promise((r) => setTimeout(r, 50));
  const origin = new URL(baseUrl).origin;
  if ([...refused].some((uri) => uri.startsWith(origin))) {
    return new WorkerError('network', `This app's security policy did not allow the request to ${host}. Turn “Answer on a server” off and on again.`);
  }
  const origin_ = globalThis.location?.origin ?? 'this page';
  return new WorkerError(
    'network',
    `Could not reach ${host} (${(e as Error)?.message || 'no response'}): the server is not running, the address is wrong, or it does not accept requests from ${origin_} (a vLLM server needs --allowed-origins '["${origin_}"]').`,
  );
}
