// Registers the service worker (offline app shell + per-worker security policy) and tells it which
// model hosts the user chose.
export async function registerServiceWorker(): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  } catch (e) {
    console.warn('The service worker could not be registered; the app works, but not offline.', e);
  }
}

/**
 * Allows the inference worker to fetch from `origin` (a model host the user chose). Resolves false
 * when no service worker controls the page (then only this origin can be reached).
 */
export async function allowModelHost(origin: string): Promise<boolean> {
  const sw = navigator.serviceWorker?.controller;
  if (!sw) return false;
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(false), 5000);
    channel.port1.onmessage = (e) => {
      clearTimeout(timer);
      resolve(Boolean((e.data as { ok?: boolean })?.ok));
    };
    sw.postMessage({ type: 'allow-model-host', origin }, [channel.port2]);
  });
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
