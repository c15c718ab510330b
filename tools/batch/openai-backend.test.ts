// The vLLM backend against the OpenAI-compatible test server on 127.0.0.1: the request it sends,
// and which failures it retries.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { frameMark, readChatRequest, startOpenAiTestServer, type OpenAiTestServer } from '../lib/openai-test-server.ts';
import { openOpenAiBackend, type OpenAiBackendOptions } from './openai-backend.ts';
import type { BackendQuestion, SampledFrame } from './types.ts';

const MODEL = 'allenai/Molmo2-4B';

/** A fake JPEG whose bytes differ per frame (the server does not decode them). */
function frame(timeS: number, k: number): SampledFrame {
  return { timeS, frame: k, width: 64, height: 48, jpeg: Uint8Array.from([0xff, 0xd8, k + 1, 7 * k, 0xff, 0xd9]) };
}

function question(times: number[], extra: Partial<BackendQuestion> = {}): BackendQuestion {
  return {
    question: 'Point to the dog.',
    mode: 'video',
    frames: times.map((t, k) => frame(t, k)),
    clipStartS: 0,
    maxNewTokens: 64,
    ...extra,
  };
}

let server: OpenAiTestServer;
let waits: number[];
let logs: string[];

beforeEach(async () => {
  server = await startOpenAiTestServer();
  waits = [];
  logs = [];
});
afterEach(async () => {
  await server.close();
});

function open(extra: Partial<OpenAiBackendOptions> = {}) {
  return openOpenAiBackend({
    server: server.url,
    model: MODEL,
    timeoutMs: 2000,
    apiKey: 'test-key',
    log: (m) => logs.push(m),
    sleep: async (ms) => {
      waits.push(ms);
    },
    ...extra,
  });
}

const posts = () => server.requests.filter((r) => r.method === 'POST');

describe('openOpenAiBackend', () => {
  it('sends the frames in order with clip-relative timestamps and the question', async () => {
    const backend = await open();
    expect(backend).toMatchObject({ kind: 'vllm', frameFormat: 'jpeg', concurrency: 4, model: { id: MODEL } });
    const q = question([12, 12.5, 13, 13.7], { clipStartS: 12 });
    const answer = await backend.ask(q);

    const [req] = posts();
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe('Bearer test-key');
    const received = readChatRequest(req.body);
    expect(received.mode).toBe('video');
    expect(received.question).toBe('Point to the dog.');
    expect(received.frames.map((f) => f.timeS)).toEqual([0, 0.5, 1, 1.7]);
    expect(received.frames.map((f) => [...f.bytes])).toEqual(q.frames.map((f) => [...f.jpeg!]));
    expect(req.body).toMatchObject({ model: MODEL, max_tokens: 64, temperature: 0 });

    const marks = q.frames.map((f) => String(frameMark(f.jpeg!)).padStart(3, '0'));
    expect(answer.text).toBe(
      `<points coords="0.0 1 ${marks[0]} 500;0.5 2 ${marks[1]} 500;1.0 3 ${marks[2]} 500;1.7 4 ${marks[3]} 500">Point to the dog.</points>`,
    );
    expect(answer.timingMs.attempts).toBe(1);
    expect(answer.timingMs.requestMs).toBeGreaterThanOrEqual(0);
    expect(logs).toEqual([]);
  });

  it('sends images as separate images in order', async () => {
    const backend = await open();
    const q = question([3, 1, 2], { mode: 'images' });
    const answer = await backend.ask(q);
    const received = readChatRequest(posts()[0].body);
    expect(received.mode).toBe('images');
    expect(received.frames.map((f) => [...f.bytes])).toEqual(q.frames.map((f) => [...f.jpeg!]));
    expect(answer.text).toMatch(/^<points coords="1 1 \d{3} 500;2 2 \d{3} 500;3 3 \d{3} 500">/);
  });

  it('retries a 500 and answers on the second attempt', async () => {
    const backend = await open();
    server.queueFaults({ kind: 'status', status: 500 });
    const answer = await backend.ask(question([0, 0.5]));
    expect(answer.timingMs.attempts).toBe(2);
    expect(posts()).toHaveLength(2);
    expect(posts()[1].body).toEqual(posts()[0].body);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThanOrEqual(250);
    expect(waits[0]).toBeLessThanOrEqual(500);
    expect(logs).toEqual([expect.stringMatching(/attempt 1 of 5 failed \(HTTP 500 Internal Server Error: injected failure 500\); retrying in/)]);
  });

  it('retries an answer slower than the timeout', async () => {
    const backend = await open({ timeoutMs: 200 });
    server.queueFaults({ kind: 'slow', ms: 3000 });
    const answer = await backend.ask(question([0]));
    expect(answer.timingMs.attempts).toBe(2);
    expect(logs[0]).toMatch(/no answer within 200 ms/);
  });

  it('retries a dropped connection', async () => {
    const backend = await open();
    server.queueFaults({ kind: 'drop' });
    const answer = await backend.ask(question([0]));
    expect(answer.timingMs.attempts).toBe(2);
    expect(logs[0]).toMatch(/the connection was dropped/);
  });

  it('honours Retry-After on 429', async () => {
    const backend = await open();
    server.queueFaults({ kind: 'status', status: 429, headers: { 'Retry-After': '7' } });
    await backend.ask(question([0]));
    expect(waits).toEqual([7000]);
  });

  it('does not retry a 400 and passes on the server’s message', async () => {
    const backend = await open();
    const body = JSON.stringify({ error: { message: 'This model’s maximum context length is 4096 tokens.', type: 'BadRequestError', code: 400 } });
    server.queueFaults({ kind: 'status', status: 400, body });
    await expect(backend.ask(question([0]))).rejects.toThrow(
      `The server at ${server.url} did not answer the question: HTTP 400 Bad Request: This model’s maximum context length is 4096 tokens.`,
    );
    expect(posts()).toHaveLength(1);
    expect(waits).toEqual([]);
  });

  it('gives up after the retries, naming the server and the last failure', async () => {
    const backend = await open({ retries: 2 });
    server.queueFaults({ kind: 'status', status: 502 }, { kind: 'drop' }, { kind: 'status', status: 503 });
    await expect(backend.ask(question([0]))).rejects.toThrow(
      `No answer from the server at ${server.url} after 3 attempts; the last failure: HTTP 503 Service Unavailable: injected failure 503`,
    );
    expect(posts()).toHaveLength(3);
    // Exponential: 500 ms then 1000 ms, each with up to half taken off by jitter.
    expect(waits[0]).toBeGreaterThanOrEqual(250);
    expect(waits[0]).toBeLessThanOrEqual(500);
    expect(waits[1]).toBeGreaterThanOrEqual(500);
    expect(waits[1]).toBeLessThanOrEqual(1000);
    expect(logs).toHaveLength(2);
  });

  it('stops retrying when the batch is interrupted', async () => {
    const controller = new AbortController();
    const backend = await open({
      sleep: () => {
        controller.abort(new Error('interrupted'));
        return new Promise(() => {});
      },
    });
    server.queueFaults({ kind: 'status', status: 503 });
    await expect(backend.ask(question([0], { signal: controller.signal }))).rejects.toThrow('interrupted');
    expect(posts()).toHaveLength(1);
  });

  it('refuses frames without JPEG bytes', async () => {
    const backend = await open();
    const q = question([0, 1]);
    delete q.frames[1].jpeg;
    await expect(backend.ask(q)).rejects.toThrow(/Frame 2 \(1 s\) has no JPEG bytes/);
  });

  it('says which models the server serves when ours is not among them', async () => {
    await expect(open({ model: 'allenai/Molmo2-8B' })).rejects.toThrow(
      `The server at ${server.url} does not serve the model “allenai/Molmo2-8B”; it serves “allenai/Molmo2-4B”. Pass one of those as the model.`,
    );
  });

  it('says when the server wants an API key', async () => {
    server.queueFaults({ kind: 'status', status: 401, body: JSON.stringify({ error: 'Unauthorized' }) });
    await expect(open()).rejects.toThrow(/did not list its models: HTTP 401 Unauthorized .*Set OPENAI_API_KEY or VLLM_API_KEY/);
  });

  it('says plainly when nothing listens at the address', async () => {
    const url = server.url;
    await server.close();
    server = await startOpenAiTestServer(); // for afterEach
    await expect(openOpenAiBackend({ server: url, model: MODEL })).rejects.toThrow(
      `Could not reach the server at ${url} (connection refused). Is it running, and is the address right?`,
    );
  });

  it('refuses an unusable address before connecting', async () => {
    await expect(openOpenAiBackend({ server: 'ftp://host', model: MODEL })).rejects.toThrow(/not usable: The address must start with http/);
  });
});

// What the web app's Playwright test relies on: a page on another origin may call the test server.
describe('the test server', () => {
  it('answers CORS preflights without using up a fault, and streams when asked', async () => {
    server.queueFaults({ kind: 'status', status: 503 });
    const pre = await fetch(`${server.url}/chat/completions`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://localhost:5173', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-headers')).toBe('authorization,content-type');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');

    const failed = await fetch(`${server.url}/models`);
    expect(failed.status).toBe(503);
    expect(failed.headers.get('access-control-allow-origin')).toBe('*');

    const body = {
      model: MODEL,
      stream: true,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/jpeg;base64,QUFB' } }, { type: 'text', text: 'Where?' }] }],
    };
    const res = await fetch(`${server.url}/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const events = (await res.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    expect(events.at(-1)).toBe('[DONE]');
    const text = events.slice(0, -1).map((e) => JSON.parse(e).choices[0].delta.content ?? '').join('');
    expect(text).toBe(`<points coords="1 1 ${frameMark(Buffer.from('AAA'))} 500">Where?</points>`);
    expect(server.requests.map((r) => r.method)).toEqual(['OPTIONS', 'GET', 'POST']);
  });
});
