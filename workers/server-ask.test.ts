// The server worker's request and its failures, with a stand-in fetch and encoder (the browser test,
// e2e/server-ask.spec.ts, runs the real worker against a local server).
import { describe, expect, it } from 'vitest';
import { base64, serverAskApi } from './server-ask.ts';
import type { ServerAskEvent, ServerAskRequest } from './server-ask-api.ts';
import { errorCode } from './worker-error.ts';

const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);
const image = (width: number) => ({ width, height: 2, data: new Uint8Array(width * 2 * 4) });

function request(over: Partial<ServerAskRequest> = {}): ServerAskRequest {
  return {
    server: { baseUrl: 'http://gpu-box:8000/v1', model: 'allenai/Molmo2-8B', apiKey: 'k1' },
    question: 'Track the dog.',
    maxNewTokens: 64,
    mode: 'video',
    frames: [0, 0.5, 1].map((timeS, i) => ({ image: image(i + 1), timeS })),
    ...over,
  };
}

const completion = (text: string) => new Response(JSON.stringify({ choices: [{ message: { role: 'assistant', content: text }, finish_reason: 'stop' }] }), { status: 200 });

/** A fetch that records its calls and answers with `reply` (or waits for the abort). */
function fakeFetch(reply: (init: RequestInit) => Promise<Response> | Response) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), init: init! });
    return reply(init!);
  }) as typeof globalThis.fetch;
  return { calls, fetch };
}

const untilAborted = (init: RequestInit) =>
  new Promise<Response>((_, reject) => init.signal!.addEventListener('abort', () => reject(new DOMException('The operation was aborted.', 'AbortError'))));

describe('server worker', () => {
  it('sends one POST with every frame as a JPEG, their clip times, the question and the key; reports its stages', async () => {
    const encoded: number[] = [];
    const { calls, fetch } = fakeFetch(() => completion('<points coords="0.5 1 500 400">dog</points>'));
    const api = serverAskApi({ fetch, encode: async (img) => (encoded.push(img.width), JPEG) });
    const events: ServerAskEvent[] = [];
    const answer = await api.ask(request(), (e) => events.push(e));

    expect(answer).toMatchObject({ text: '<points coords="0.5 1 500 400">dog</points>', stoppedBy: 'eos' });
    expect(encoded).toEqual([1, 2, 3]);
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe('http://gpu-box:8000/v1/chat/completions');
    expect(calls[0].init.method).toBe('POST');
    expect(calls[0].init.credentials).toBe('omit');
    expect(calls[0].init.headers).toEqual({ 'Content-Type': 'application/json', Authorization: 'Bearer k1' });
    const body = JSON.parse(String(calls[0].init.body));
    expect(body.model).toBe('allenai/Molmo2-8B');
    expect(body.max_tokens).toBe(64);
    const content = body.messages[0].content as { type: string; text?: string; video_url?: { url: string } }[];
    expect(content.at(-1)).toEqual({ type: 'text', text: 'Track the dog.' });
    expect(content[0].video_url!.url).toBe(`data:video/jpeg;base64,${[1, 2, 3].map(() => base64(JPEG)).join(',')}`);
    expect(body.media_io_kwargs.video.frames_indices).toEqual([0, 500, 1000]);
    expect(events).toEqual([
      { type: 'stage', stage: 'encode', done: 1, total: 3 },
      { type: 'stage', stage: 'encode', done: 2, total: 3 },
      { type: 'stage', stage: 'encode', done: 3, total: 3 },
      { type: 'stage', stage: 'server' },
    ]);
  });

  it('sends images one part each, a follow-up with its turns, and no Authorization header without a key', async () => {
    const { calls, fetch } = fakeFetch(() => completion('2'));
    const api = serverAskApi({ fetch, encode: async () => JPEG });
    await api.ask(request({ mode: 'images', server: { baseUrl: 'http://gpu-box:8000/v1', model: 'm' }, history: [{ question: 'How many?', answer: '1' }] }));
    const body = JSON.parse(String(calls[0].init.body));
    expect(calls[0].init.headers).toEqual({ 'Content-Type': 'application/json' });
    expect(body.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(body.messages[0].content.filter((p: { type: string }) => p.type === 'image_url')).toHaveLength(3);
    expect(body.messages[2].content).toBe('Track the dog.');
  });

  it('base64 matches Node’s, for a frame larger than one slice', () => {
    const bytes = new Uint8Array(100_000).map((_, i) => (i * 7919) % 256);
    expect(base64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
  });

  it('an error status gives the server’s own message, naming the server', async () => {
    const { fetch } = fakeFetch(() => new Response(JSON.stringify({ error: { message: 'CUDA out of memory' } }), { status: 500 }));
    const api = serverAskApi({ fetch, encode: async () => JPEG });
    const e = await api.ask(request()).catch((x: unknown) => x as Error);
    expect(errorCode(e)).toBe('network');
    expect((e as Error).message).toBe('gpu-box:8000 did not answer the question: HTTP 500 Internal Server Error: CUDA out of memory');
  });

  it('a server that cannot be reached says what may be wrong, including the allowed origins', async () => {
    const { fetch } = fakeFetch(() => Promise.reject(new TypeError('Failed to fetch')));
    const e = await serverAskApi({ fetch, encode: async () => JPEG }).ask(request()).catch((x: unknown) => x as Error);
    expect((e as Error).message).toMatch(/^Could not reach gpu-box:8000 \(Failed to fetch\): the server is not running, the address is wrong, or it does not accept requests from .*--allowed-origins/);
  });

  it('a reply that is not a chat completion, or not JSON, is said so', async () => {
    const notChat = await serverAskApi({ fetch: fakeFetch(() => new Response('{"hello":1}')).fetch, encode: async () => JPEG })
      .ask(request())
      .catch((x: unknown) => x as Error);
    expect((notChat as Error).message).toMatch(/^gpu-box:8000: The server’s reply is not a chat completion/);
    const html = await serverAskApi({ fetch: fakeFetch(() => new Response('<html>hi</html>')).fetch, encode: async () => JPEG })
      .ask(request())
      .catch((x: unknown) => x as Error);
    expect((html as Error).message).toMatch(/not JSON/);
  });

  it('no answer in time ends the request with a plain message', async () => {
    const { fetch } = fakeFetch(untilAborted);
    const e = await serverAskApi({ fetch, encode: async () => JPEG }).ask(request({ timeoutMs: 30 })).catch((x: unknown) => x as Error);
    expect((e as Error).message).toMatch(/^gpu-box:8000 did not answer within 0 s\. Try fewer frames/);
  });

  it('cancel ends the request at once; the next question can go', async () => {
    let started!: () => void;
    const sent = new Promise<void>((r) => (started = r));
    let hang = true;
    const { fetch } = fakeFetch((init) => (hang ? (started(), untilAborted(init)) : completion('ok')));
    const api = serverAskApi({ fetch, encode: async () => JPEG });
    const pending = api.ask(request());
    await sent;
    await expect(api.ask(request())).rejects.toThrow(/already on its way/);
    api.cancel();
    await expect(pending).resolves.toMatchObject({ text: '', stoppedBy: 'cancel' });
    hang = false;
    await expect(api.ask(request())).resolves.toMatchObject({ text: 'ok' });
  });

  it('a request the shared builder refuses (no model id) is a bad input, sent nowhere', async () => {
    const { calls, fetch } = fakeFetch(() => completion('x'));
    const e = await serverAskApi({ fetch, encode: async () => JPEG })
      .ask(request({ server: { baseUrl: 'http://gpu-box:8000/v1', model: ' ' } }))
      .catch((x: unknown) => x as Error);
    expect(errorCode(e)).toBe('bad-input');
    expect(calls).toHaveLength(0);
  });
});
