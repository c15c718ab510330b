// "Answer on a server": an OpenAI-compatible server (a vLLM running Molmo2) that questions go to
// instead of the model on this device. Off on every page load. Turning it on asks the user first (the
// frames then leave the device); only once they confirm is the server's origin admitted, by the
// service worker, for the server worker alone; turning it off removes it and ends that worker.
// The address and model id are remembered in localStorage (they are not secret). The API key is kept
// in memory only: the setting itself ends with the page, so a stored key would outlive the only
// thing that uses it, and memory is the one place no other page, tab or disk copy can read it from.
import { create } from 'zustand';
import { serverBaseUrl } from '../molmo2/openai-chat.ts';
import { setServerHost } from '../security/service-worker.ts';
import { stopServerWorker } from '../ui/ask/server-client.ts';
import type { ServerTarget } from '../../workers/server-ask-api.ts';

export const DEFAULT_SERVER_MODEL = 'allenai/Molmo2-8B';
const STORAGE_KEY = 'molmo2-web.answer-server';

/** A server as confirmed: where requests go, and its origin and host as the user is told them. */
export interface ServerChoice {
  baseUrl: string;
  origin: string;
  /** host[:port], e.g. gpu-box:8000. */
  host: string;
}

export interface ServerState {
  url: string;
  model: string;
  apiKey: string;
  /** On: confirmed, and its origin admitted for the server worker. */
  on: boolean;
  /** The server turned on, or the one awaiting confirmation. */
  choice?: ServerChoice;
  /** The confirmation is open. */
  confirming: boolean;
  error?: string;
  setUrl(url: string): void;
  setModel(model: string): void;
  setApiKey(key: string): void;
  /** Checks the address and model id, then asks for confirmation (nothing is admitted yet). */
  requestOn(): void;
  /** The user confirmed: admit the server's origin for the server worker, and turn on. */
  confirm(): Promise<void>;
  /** The user declined: stays off. */
  dismiss(): void;
  /** Off: the origin is removed and the server worker ended. */
  turnOff(): Promise<void>;
}

function remembered(): { url: string; model: string } {
  try {
    const v = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}') as { url?: unknown; model?: unknown };
    return { url: typeof v.url === 'string' ? v.url : '', model: typeof v.model === 'string' && v.model ? v.model : DEFAULT_SERVER_MODEL };
  } catch {
    return { url: '', model: DEFAULT_SERVER_MODEL };
  }
}

function remember(url: string, model: string): void {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ url, model }));
  } catch {
    // Blocked storage only costs retyping the address next time.
  }
}

export const useServerStore = create<ServerState>()((set, get) => ({
  ...remembered(),
  apiKey: '',
  on: false,
  confirming: false,
  setUrl: (url) => set({ url, error: undefined }),
  setModel: (model) => set({ model, error: undefined }),
  setApiKey: (apiKey) => set({ apiKey }),

  requestOn() {
    const parsed = serverBaseUrl(get().url);
    if (!parsed.ok) return set({ error: parsed.message, confirming: false });
    if (!get().model.trim()) return set({ error: 'Enter the model id the server serves, e.g. allenai/Molmo2-8B.', confirming: false });
    const u = new URL(parsed.url);
    if (u.origin === location.origin) return set({ error: 'That is this app’s own address, not an answer server.', confirming: false });
    set({ choice: { baseUrl: parsed.url, origin: u.origin, host: u.host }, confirming: true, error: undefined });
  },

  async confirm() {
    const { choice, url, model } = get();
    if (!choice) return;
    set({ confirming: false });
    if (!(await setServerHost(choice.origin))) {
      return set({ on: false, choice: undefined, error: 'Answering on a server needs the app’s service worker, which is not active; reload the page and try again.' });
    }
    remember(url.trim(), model.trim());
    set({ on: true, error: undefined });
  },

  dismiss: () => set({ confirming: false, ...(get().on ? {} : { choice: undefined }) }),

  async turnOff() {
    set({ on: false, choice: undefined, confirming: false });
    stopServerWorker();
    await setServerHost(null);
  },
}));

/** Where a question goes while the setting is on (with the API key); undefined: on this device. */
export function serverTarget(): (ServerTarget & ServerChoice) | undefined {
  const { on, choice, model, apiKey } = useServerStore.getState();
  if (!on || !choice) return undefined;
  return { ...choice, model: model.trim(), ...(apiKey ? { apiKey } : {}) };
}
