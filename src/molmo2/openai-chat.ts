// One question as an OpenAI-compatible chat-completions request (a vLLM server running Molmo2), and
// the answer text out of the response. Platform-free: the batch tool (Node) and the web app share it.
//
// Request shape, from vLLM's sources (vllm-project/vllm):
// - Video: ONE `video_url` part `data:video/jpeg;base64,<f1>,<f2>,…`. VideoMediaIO.load_base64
//   (vllm/multimodal/media/video.py) decodes each comma-separated base64 JPEG as one frame, in order,
//   and builds the video metadata from the request's `media_io_kwargs.video`: `fps`,
//   `frames_indices`, `total_num_frames`, `duration`, `do_sample_frames` (PR #40133; earlier
//   releases read only `fps` and number the frames 0..n−1, PR #37301). It keeps at most
//   `num_frames` frames (default 32), so we send our count.
// - Molmo2 (vllm/model_executor/models/molmo2.py, Molmo2ProcessingInfo._get_video_second_idx and
//   the HF Molmo2Processor.get_video_string) writes frame k's timestamp as
//   f"{frames_indices[k] / fps:.1f}" and does not resample when do_sample_frames is false. A
//   millisecond timebase (fps = 1000, frames_indices = round(t·1000)) therefore carries any
//   clip-relative time to the prompt: the model sees exactly our frames with our times (to the ms,
//   then to 0.1 s as in the local prompt).
// - Images: one `image_url` part per image, in order; Molmo2's chat template labels them
//   "Image 1", "Image 2", … itself.
// - The visual parts come first in the first user message and the question text after them; the
//   Molmo2 template renders all visual content before the `<|im_start|>user` turn either way
//   (src/molmo2/chat-template.ts), and vLLM passes list content to the template as it is.

export interface ChatFrame {
  /** Timestamp the model sees (s; clip-relative in video mode). */
  timeS: number;
  /** The JPEG file, base64 (no data: prefix). */
  jpegBase64: string;
}

export interface ChatQuestion {
  model: string;
  question: string;
  mode: 'video' | 'images';
  frames: ChatFrame[];
  maxNewTokens: number;
  /** Earlier turns of a follow-up, oldest first. */
  history?: { question: string; answer: string }[];
}

/** Frames per second of the timebase that carries our timestamps to vLLM: milliseconds. */
export const VIDEO_TIMEBASE_FPS = 1000;

// Strict base64: a comma would split a video frame in two, a data: prefix would not decode.
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The JSON body of POST {server}/chat/completions (greedy: temperature 0). */
export function chatCompletionRequest(q: ChatQuestion): Record<string, unknown> {
  if (!q.model.trim()) throw new Error('No model name was given for the server.');
  if (!Number.isInteger(q.maxNewTokens) || q.maxNewTokens < 1) {
    throw new Error(`The answer length limit must be a whole number of tokens ≥ 1, got ${q.maxNewTokens}.`);
  }
  if (q.mode === 'video' && q.frames.length === 0) throw new Error('A video question needs at least one frame.');
  q.frames.forEach((f, i) => {
    if (!f.jpegBase64 || !BASE64.test(f.jpegBase64)) {
      throw new Error(`Frame ${i + 1} is not a base64 JPEG (no "data:" prefix, no commas or spaces).`);
    }
  });

  const visual: Record<string, unknown>[] =
    q.mode === 'video'
      ? [{ type: 'video_url', video_url: { url: `data:video/jpeg;base64,${q.frames.map((f) => f.jpegBase64).join(',')}` } }]
      : q.frames.map((f) => ({ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${f.jpegBase64}` } }));

  // The visual content belongs to the first user message, as in the app's own prompts (prompt.ts).
  const turns = [...(q.history ?? []), { question: q.question, answer: undefined }];
  const messages: Record<string, unknown>[] = [];
  turns.forEach((t, i) => {
    const content = i === 0 && visual.length > 0 ? [...visual, { type: 'text', text: t.question }] : t.question;
    messages.push({ role: 'user', content });
    if (t.answer !== undefined) messages.push({ role: 'assistant', content: t.answer });
  });

  const body: Record<string, unknown> = {
    model: q.model,
    messages,
    max_tokens: q.maxNewTokens,
    temperature: 0,
    stream: false,
  };
  if (q.mode === 'video') {
    body.media_io_kwargs = { video: videoMetadata(q.frames.map((f) => f.timeS)) };
    // molmo2.py: "Make sure that do_sample_frames in hf_kwargs is false for presampled videos."
    body.mm_processor_kwargs = { do_sample_frames: false };
  }
  return body;
}

/** media_io_kwargs.video for frames shown at `times` (s from the clip start). */
function videoMetadata(times: number[]): Record<string, unknown> {
  const framesIndices = times.map((t, i) => {
    if (!Number.isFinite(t) || t < -1e-6) throw new Error(`Frame ${i + 1} has no valid clip time (${t} s).`);
    return Math.max(0, Math.round(t * VIDEO_TIMEBASE_FPS));
  });
  const last = Math.max(...framesIndices);
  return {
    num_frames: times.length,
    fps: VIDEO_TIMEBASE_FPS,
    frames_indices: framesIndices,
    total_num_frames: last + 1,
    duration: last / VIDEO_TIMEBASE_FPS,
    do_sample_frames: false,
  };
}

/** An error body or an answer whose shape is not a chat completion, in plain words. */
export class ChatResponseError extends Error {
  override name = 'ChatResponseError';
}

/**
 * The message of an OpenAI-style error body: `{"error": {"message": …}}` (OpenAI, newer vLLM),
 * `{"object": "error", "message": …}` (older vLLM), `{"error": "…"}` or `{"detail": …}` (other
 * servers). Undefined when the body carries none.
 */
export function errorBodyMessage(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  const err = body.error;
  if (typeof err === 'string' && err.trim()) return err.trim();
  if (isRecord(err) && typeof err.message === 'string' && err.message.trim()) return err.message.trim();
  if (body.object === 'error' && typeof body.message === 'string' && body.message.trim()) return body.message.trim();
  if (typeof body.detail === 'string' && body.detail.trim()) return body.detail.trim();
  if (Array.isArray(body.detail)) {
    const parts = body.detail.map((d) => (isRecord(d) && typeof d.msg === 'string' ? d.msg : '')).filter(Boolean);
    if (parts.length > 0) return parts.join('; ');
  }
  return undefined;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** "HTTP 400 Bad Request: <the server's message>" from a status and the raw response body. */
export function httpErrorMessage(status: number, bodyText: string): string {
  const head = `HTTP ${status}${STATUS_TEXT[status] ? ` ${STATUS_TEXT[status]}` : ''}`;
  let detail: string | undefined;
  try {
    detail = errorBodyMessage(JSON.parse(bodyText));
  } catch {
    // Not JSON (a proxy's HTML page, plain text): show its start.
  }
  detail ??= bodyText.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
  const hint =
    status === 401 || status === 403
      ? ' (the server wants an API key, or refused the one given)'
      : status === 413
        ? ' (the request is too large for the server: fewer or smaller frames would fit)'
        : '';
  return detail ? `${head}${hint}: ${detail}` : `${head}${hint}`;
}

/** The answer text of a chat-completions response; throws ChatResponseError with a plain message for an error body or an unexpected shape. */
export function chatAnswerText(json: unknown): string {
  const err = errorBodyMessage(json);
  if (err !== undefined) throw new ChatResponseError(`The server answered with an error: ${err}`);
  if (!isRecord(json) || !Array.isArray(json.choices)) {
    throw new ChatResponseError('The server’s reply is not a chat completion (it has no "choices").');
  }
  const choice = json.choices[0];
  if (!isRecord(choice) || !isRecord(choice.message)) {
    throw new ChatResponseError('The server’s reply has no answer message (empty "choices").');
  }
  const content = choice.message.content;
  if (typeof content === 'string') return content;
  // Some servers return content as parts.
  if (Array.isArray(content)) {
    const texts = content.map((p) => (isRecord(p) && typeof p.text === 'string' ? p.text : undefined));
    if (texts.every((t) => t !== undefined)) return texts.join('');
  }
  if (content === null || content === undefined) {
    throw new ChatResponseError(`The server’s reply has no answer text (finish reason: ${String(choice.finish_reason ?? 'none')}).`);
  }
  throw new ChatResponseError('The server’s answer is not text.');
}

/** Normalises a user-typed server base URL (…/v1), or returns a plain-language reason it is not usable. */
export function serverBaseUrl(input: string): { ok: true; url: string } | { ok: false; message: string } {
  let s = input.trim();
  if (!s) return { ok: false, message: 'Enter the server’s address, e.g. http://localhost:8000/v1.' };
  // "localhost:8000" or "gpu-box/v1": plain HTTP is what a local vLLM speaks.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) s = `http://${s}`;
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(.*)$/i.exec(s);
  if (!m) return { ok: false, message: `“${input.trim()}” is not a web address.` };
  const scheme = m[1].toLowerCase();
  const authority = m[2];
  let path = m[3];
  if (scheme !== 'http' && scheme !== 'https') {
    return { ok: false, message: `The address must start with http:// or https://, not ${scheme}://.` };
  }
  if (m[4]) return { ok: false, message: 'Leave out the “?…” or “#…” part of the address.' };
  if (authority.includes('@')) {
    return { ok: false, message: 'Leave the user name and password out of the address; give an API key instead.' };
  }
  const host = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(authority);
  if (!host || host[1] === '.' || host[1].startsWith('-')) {
    return { ok: false, message: `“${authority || '(nothing)'}” is not a host name${authority ? '' : ' — the address has no host'}.` };
  }
  if (host[2] !== undefined && (Number(host[2]) < 1 || Number(host[2]) > 65535)) {
    return { ok: false, message: `Port ${host[2]} is out of range (1–65535).` };
  }
  if (/\s/.test(path)) return { ok: false, message: 'The address contains spaces.' };
  // A pasted endpoint address stands for its base.
  path = path.replace(/\/+$/, '').replace(/\/(chat\/completions|completions|models)$/i, '').replace(/\/+$/, '');
  // vLLM and OpenAI serve under /v1; other servers (…/api/v1, …/openai/v1) keep the path they gave.
  if (path === '') path = '/v1';
  return { ok: true, url: `${scheme}://${authority.toLowerCase()}${path}` };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
