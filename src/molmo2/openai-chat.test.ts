import { describe, expect, it } from 'vitest';
import {
  chatAnswerText,
  chatCompletionRequest,
  ChatResponseError,
  errorBodyMessage,
  httpErrorMessage,
  serverBaseUrl,
  VIDEO_TIMEBASE_FPS,
  type ChatQuestion,
} from './openai-chat.ts';
import { formatTimestamp } from './prompt.ts';

const A = 'QUFB'; // "AAA"
const B = 'QkJC';
const C = 'Q0ND';

function video(times: number[], extra: Partial<ChatQuestion> = {}): ChatQuestion {
  return {
    model: 'allenai/Molmo2-4B',
    question: 'Point to the dog.',
    mode: 'video',
    frames: times.map((timeS, i) => ({ timeS, jpegBase64: [A, B, C][i % 3] })),
    maxNewTokens: 256,
    ...extra,
  };
}

describe('chatCompletionRequest', () => {
  it('sends a video as one video/jpeg part with our frames in order, then the question', () => {
    const body = chatCompletionRequest(video([0, 0.5, 1, 1.25]));
    expect(body).toMatchObject({ model: 'allenai/Molmo2-4B', max_tokens: 256, temperature: 0, stream: false });
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'video_url', video_url: { url: `data:video/jpeg;base64,${A},${B},${C},${A}` } },
          { type: 'text', text: 'Point to the dog.' },
        ],
      },
    ]);
  });

  it('carries the clip times as frame indices of a millisecond timebase, without resampling', () => {
    const times = [0, 0.5, 1, 1.5, 2, 2.2];
    const body = chatCompletionRequest(video(times));
    const meta = (body.media_io_kwargs as { video: Record<string, unknown> }).video;
    expect(meta).toEqual({
      num_frames: 6,
      fps: VIDEO_TIMEBASE_FPS,
      frames_indices: [0, 500, 1000, 1500, 2000, 2200],
      total_num_frames: 2201,
      duration: 2.2,
      do_sample_frames: false,
    });
    expect(body.mm_processor_kwargs).toEqual({ do_sample_frames: false });
    // What Molmo2 writes in the prompt (f"{idx / fps:.1f}") is what the local prompt writes.
    const shown = (meta.frames_indices as number[]).map((i) => formatTimestamp(i / (meta.fps as number)));
    expect(shown).toEqual(times.map(formatTimestamp));
  });

  it('keeps irregular times (uniform spread of a long clip) to the millisecond', () => {
    const times = Array.from({ length: 64 }, (_, i) => (i * 600) / 63);
    const meta = (chatCompletionRequest(video(times)).media_io_kwargs as { video: { frames_indices: number[] } }).video;
    meta.frames_indices.forEach((idx, i) => {
      expect(Math.abs(idx / VIDEO_TIMEBASE_FPS - times[i])).toBeLessThanOrEqual(0.0005);
      expect(formatTimestamp(idx / VIDEO_TIMEBASE_FPS)).toBe(formatTimestamp(times[i]));
    });
  });

  it('sends images as image parts in order, with no video metadata', () => {
    const body = chatCompletionRequest({ ...video([0, 1, 2]), mode: 'images' });
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${A}` } },
          { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${B}` } },
          { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${C}` } },
          { type: 'text', text: 'Point to the dog.' },
        ],
      },
    ]);
    expect(body).not.toHaveProperty('media_io_kwargs');
    expect(body).not.toHaveProperty('mm_processor_kwargs');
  });

  it('replays a follow-up with the visual content in the first user message', () => {
    const body = chatCompletionRequest(
      video([0, 0.5], {
        question: 'And the cat?',
        history: [
          { question: 'How many dogs?', answer: 'There are 2 dogs.' },
          { question: 'Point to them.', answer: '<points coords="0.0 1 100 200">dogs</points>' },
        ],
      }),
    );
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'video_url', video_url: { url: `data:video/jpeg;base64,${A},${B}` } },
          { type: 'text', text: 'How many dogs?' },
        ],
      },
      { role: 'assistant', content: 'There are 2 dogs.' },
      { role: 'user', content: 'Point to them.' },
      { role: 'assistant', content: '<points coords="0.0 1 100 200">dogs</points>' },
      { role: 'user', content: 'And the cat?' },
    ]);
  });

  it('asks a text-only question when images mode has no images', () => {
    const body = chatCompletionRequest({ ...video([]), mode: 'images' });
    expect(body.messages).toEqual([{ role: 'user', content: 'Point to the dog.' }]);
  });

  it('refuses what the server could not read, in plain words', () => {
    expect(() => chatCompletionRequest(video([]))).toThrow(/at least one frame/);
    expect(() => chatCompletionRequest(video([0], { maxNewTokens: 0 }))).toThrow(/whole number of tokens/);
    expect(() => chatCompletionRequest(video([0], { model: ' ' }))).toThrow(/No model/);
    expect(() => chatCompletionRequest(video([-1]))).toThrow(/Frame 1 has no valid clip time/);
    expect(() => chatCompletionRequest(video([Number.NaN]))).toThrow(/no valid clip time/);
    const bad = video([0, 1]);
    bad.frames[1] = { timeS: 1, jpegBase64: `data:image/jpeg;base64,${A}` };
    expect(() => chatCompletionRequest(bad)).toThrow(/Frame 2 is not a base64 JPEG/);
    bad.frames[1] = { timeS: 1, jpegBase64: `${A},${B}` };
    expect(() => chatCompletionRequest(bad)).toThrow(/Frame 2/);
  });

  it('rounds float noise just below the clip start to 0', () => {
    const meta = (chatCompletionRequest(video([-1e-9, 0.5])).media_io_kwargs as { video: { frames_indices: number[] } }).video;
    expect(meta.frames_indices).toEqual([0, 500]);
  });
});

describe('chatAnswerText', () => {
  const reply = (content: unknown) => ({
    id: 'chatcmpl-1',
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  });

  it('returns the first choice’s text exactly', () => {
    expect(chatAnswerText(reply(' <points coords="1 1 500 500">a</points>\n'))).toBe(' <points coords="1 1 500 500">a</points>\n');
    expect(chatAnswerText(reply([{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }]))).toBe('ab');
  });

  it('turns error bodies and odd shapes into ChatResponseError with plain messages', () => {
    const cases: [unknown, RegExp][] = [
      [{ error: { message: 'The model `x` does not exist.', type: 'NotFoundError', code: 404 } }, /error: The model `x` does not exist/],
      [{ object: 'error', message: 'Too many frames', type: 'BadRequestError', code: 400 }, /Too many frames/],
      [{ error: 'rate limited' }, /rate limited/],
      [{ id: 'x' }, /not a chat completion/],
      [{ choices: [] }, /no answer message/],
      [reply(null), /no answer text \(finish reason: stop\)/],
      [reply(42), /not text/],
      ['<html>', /not a chat completion/],
      [null, /not a chat completion/],
    ];
    for (const [json, message] of cases) {
      expect(() => chatAnswerText(json)).toThrow(ChatResponseError);
      expect(() => chatAnswerText(json)).toThrow(message);
    }
  });
});

describe('httpErrorMessage and errorBodyMessage', () => {
  it('puts the status and the server’s own message together', () => {
    expect(httpErrorMessage(400, JSON.stringify({ error: { message: 'max_tokens is too large' } }))).toBe(
      'HTTP 400 Bad Request: max_tokens is too large',
    );
    expect(httpErrorMessage(404, '{"detail":"Not Found"}')).toBe('HTTP 404 Not Found: Not Found');
    expect(httpErrorMessage(401, '')).toBe('HTTP 401 Unauthorized (the server wants an API key, or refused the one given)');
    expect(httpErrorMessage(502, '<html><body><h1>502 Bad Gateway</h1></body></html>')).toBe('HTTP 502 Bad Gateway: 502 Bad Gateway');
    expect(httpErrorMessage(599, 'x'.repeat(1000))).toMatch(/^HTTP 599: x{300}$/);
  });

  it('reads FastAPI validation details', () => {
    expect(errorBodyMessage({ detail: [{ msg: 'field required' }, { msg: 'bad type' }] })).toBe('field required; bad type');
    expect(errorBodyMessage({ choices: [] })).toBeUndefined();
  });
});

describe('serverBaseUrl', () => {
  it('normalises what people type to the …/v1 base', () => {
    const ok = (input: string, url: string) => expect(serverBaseUrl(input)).toEqual({ ok: true, url });
    ok('http://localhost:8000/v1', 'http://localhost:8000/v1');
    ok('  http://localhost:8000/v1/  ', 'http://localhost:8000/v1');
    ok('localhost:8000', 'http://localhost:8000/v1');
    ok('http://127.0.0.1:8000', 'http://127.0.0.1:8000/v1');
    ok('HTTPS://GPU.Example.org', 'https://gpu.example.org/v1');
    ok('http://localhost:8000/v1/chat/completions', 'http://localhost:8000/v1');
    ok('http://localhost:8000/v1/models', 'http://localhost:8000/v1');
    ok('https://host/api/v1', 'https://host/api/v1');
    ok('http://[::1]:8000', 'http://[::1]:8000/v1');
  });

  it('says why an address is not usable', () => {
    const bad = (input: string, message: RegExp) => {
      const r = serverBaseUrl(input);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.message).toMatch(message);
    };
    bad('', /Enter the server’s address/);
    bad('ftp://host/v1', /http:\/\/ or https:\/\//);
    bad('http://host/v1?key=1', /“\?…” or “#…”/);
    bad('http://user:pw@host/v1', /API key/);
    bad('http://host:99999', /Port 99999/);
    bad('http://', /no host/);
    bad('http://ho st/v1', /not a host name/);
    bad('http://host/v 1', /spaces/);
  });
});
