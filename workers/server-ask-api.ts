// Typed interface of the server worker (comlink): it sends one question, with its frames as JPEG, to
// the OpenAI-compatible server the user confirmed, and nothing else. It is its own small worker so
// that the service worker can give it alone a policy that admits that server (public/sw.js), and so
// it can be replaced when the server changes without touching the loaded local model.
import * as Comlink from 'comlink';
import type { ChatTurn } from '../src/molmo2/chat-template.ts';
import type { ImageInput } from '../src/runtime/api-types.ts';
import { wrapWorker, type WrappedWorker } from './wrap-worker.ts';

export interface ServerTarget {
  /** The server's base URL as serverBaseUrl (src/molmo2/openai-chat.ts) normalised it, e.g. http://gpu-box:8000/v1. */
  baseUrl: string;
  /** The model id the server serves, e.g. allenai/Molmo2-8B. */
  model: string;
  /** Sent as "Authorization: Bearer …" when given. */
  apiKey?: string;
}

export interface ServerAskRequest {
  server: ServerTarget;
  question: string;
  /** A follow-up's earlier turns, oldest first. */
  history?: ChatTurn[];
  maxNewTokens: number;
  mode: 'video' | 'images';
  /** The frames in order; `timeS` is what the model is told (clip-relative in video mode). */
  frames: { image: ImageInput; timeS: number }[];
  /** How long to wait for the answer (default 5 minutes). */
  timeoutMs?: number;
}

/** Progress: the frames encoded as JPEG, then waiting for the server. */
export type ServerAskEvent = { type: 'stage'; stage: 'encode'; done: number; total: number } | { type: 'stage'; stage: 'server' };

export interface ServerAnswer {
  text: string;
  stoppedBy: 'eos' | 'cancel';
  /** JPEG encoding, and the request to the server from sending to the answer read. */
  encodeMs: number;
  serverMs: number;
}

export interface ServerAskApi {
  /** Encodes the frames, sends the question and resolves with the answer; rejects with a plain message (code 'network' or 'bad-input'). */
  ask(request: ServerAskRequest, onEvent?: (e: ServerAskEvent) => void): Promise<ServerAnswer>;
  /** Stops the question in progress (it resolves with stoppedBy 'cancel'). */
  cancel(): void;
}

export type ServerAskWorker = WrappedWorker<ServerAskApi>;

/** Starts the server worker; `onCrash` is called when it fails outside any call. */
export function startServerAskWorker(onCrash?: (message: string) => void): ServerAskWorker {
  return wrapWorker<ServerAskApi>(new Worker(new URL('./server-ask.worker.ts', import.meta.url), { type: 'module', name: 'server-ask' }), onCrash);
}
