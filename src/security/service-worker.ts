// Registers the service worker (offline app shell + per-worker security policy) and tells it which
// model hosts the user chose, and which answer server (if any) the server worker may reach.
import { appUrl } from '../app-url.ts';

export async function registerServiceWorker(): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  try {
    // Beside index.html, with the default scope (its own folder): the app wherever it is hosted.
    await navigator.serviceWorker.register(appUrl('sw.js'));
  } catch (e) {
    console.warn('The service worker could not be registered; the app works, but not offline.', e);
  }
}

/** Sends `message` to the service worker; resolves false when none controls the page or it does not answer. */
function tell(message: Record<string, unknown>): Promise<boolean> {
  const sw = navigator.serviceWorker?.controller;
  if (!sw) return Promise.resolve(false);
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(false), 5000);
    channel.port1.onmessage = (e) => {
      clearTimeout(timer);
      resolve(Boolean((e.data as { ok?: boolean })?.ok));
    };
    sw.postMessage(message, [channel.port2]);
  });
}

/**
 * Allows the inference worker to fetch from `origin` (a model host the user chose). Resolves false
 * when no service worker controls the page (then only this origin can be reached).
 */
export function allowModelHost(origin: string): Promise<boolean> {
  return tell({ type: 'allow-model-host', origin });
}

/**
 * Sets the one origin the server worker (workers/server-ask.worker.ts) may reach: the answer server
 * the user confirmed, or null for none. Only workers started afterwards get it, and no other page or
 * worker ever does. Resolves false when no service worker controls the page.
 */
export function setServerHost(origin: string | null): Promise<boolean> {
  return tell({ type: 'set-server-host', origin });
}

/** Resolves once a service worker controls the page, or after `ms` (first visits, no support). */
export function untilControlled(ms: number): Promise<void> {
  const sw = navigator.serviceWorker;
  if (!sw || sw.controller) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    sw.addEventListener('controllerchange', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
