// Service worker: keeps the app shell (every same-origin file the app fetched) for offline use,
// and gives every page and worker it serves the app's Content-Security-Policy, whose connect-src
// lists this origin plus the model hosts the user chose. The one worker that sends questions to an
// answer server (workers/server-ask.worker.ts) gets that server's origin instead, and only while the
// user has it on; no other page or worker ever gets it. Model weights are cached by the app in OPFS,
// not here.
//
// Every address is taken relative to this file's folder (the app's root, where index.html is), never
// from the host's root, so a build works from any folder of a static host.
const BASE = new URL('./', self.location.href).href;
const SHELL = 'molmo2-web-shell-v1';
const SETTINGS = 'molmo2-web-settings';
// Settings are kept per app folder: Cache Storage is per origin, and two copies of the app on one host
// must not share them.
const HOSTS_KEY = `${BASE}__molmo2/model-hosts`;
const SERVER_KEY = `${BASE}__molmo2/server-host`;
const POLICY_URL = `${BASE}csp.json`;
// Written by `vite build` (tools/vite-offline-shell.ts): the built app's files; the dev server has none.
const PRECACHE_URL = `${BASE}precache.json`;
const MODELS = `${BASE}models/`;
// The server worker's script: /workers/server-ask.worker.ts in development, assets/server-ask.worker-<hash>.js built.
const isServerWorker = (url) => /\/server-ask\.worker[^/]*\.(?:ts|js)$/.test(url.pathname);
const isOrigin = (origin) => typeof origin === 'string' && /^https?:\/\/[^/]+$/.test(origin);

// The page and its first scripts load before this worker exists, so a first visit would not be kept:
// the built app's files are fetched now (one failed file costs only itself), and so the app opens
// offline after a single visit. Everything else is kept as it is fetched (network first, below).
async function precache() {
  const cache = await caches.open(SHELL);
  await cache.add(POLICY_URL);
  const list = await fetch(PRECACHE_URL, { cache: 'no-store' }).catch(() => undefined);
  if (!list?.ok || !(list.headers.get('Content-Type') ?? '').includes('json')) return;
  const files = await list.json();
  await Promise.allSettled(files.map((f) => cache.add(new URL(f, BASE).href)));
}

self.addEventListener('install', (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

async function modelHosts() {
  const hit = await (await caches.open(SETTINGS)).match(HOSTS_KEY);
  return hit ? hit.json() : [];
}

async function serverHost() {
  const hit = await (await caches.open(SETTINGS)).match(SERVER_KEY);
  const origin = hit ? await hit.json() : null;
  return isOrigin(origin) ? origin : null;
}

async function saveSetting(key, value) {
  await (await caches.open(SETTINGS)).put(key, new Response(JSON.stringify(value), { headers: { 'Content-Type': 'application/json' } }));
}

async function policy(url) {
  const res = (await caches.match(POLICY_URL)) ?? (await fetch(POLICY_URL));
  const directives = await res.clone().json();
  const server = isServerWorker(url) ? await serverHost() : null;
  const hosts = isServerWorker(url) ? (server ? [server] : []) : await modelHosts();
  return Object.entries(directives)
    .map(([name, values]) => [name, ...values, ...(name === 'connect-src' ? hosts : [])].join(' '))
    .join('; ');
}

self.addEventListener('message', (event) => {
  const { type, origin } = event.data ?? {};
  if (type === 'allow-model-host' && isOrigin(origin)) {
    event.waitUntil(
      (async () => {
        const hosts = await modelHosts();
        if (!hosts.includes(origin)) hosts.push(origin);
        await saveSetting(HOSTS_KEY, hosts);
        event.ports[0]?.postMessage({ ok: true, hosts });
      })(),
    );
  } else if (type === 'set-server-host' && (origin === null || isOrigin(origin))) {
    // One answer server at most; null removes it (the user turned it off, or a page started).
    event.waitUntil(
      (async () => {
        await saveSetting(SERVER_KEY, origin);
        event.ports[0]?.postMessage({ ok: true, origin });
      })(),
    );
  }
});

// What this worker answers: pages and worker scripts (they get the policy) and the app's own files
// (kept for offline use). Model files (cached by the app in OPFS) and ranged reads go straight to
// the network.
const isModelFile = (url) => url.href.startsWith(MODELS) && url.href !== `${MODELS}index.json`;
const handled = (url, req) => req.mode === 'navigate' || req.destination === 'worker' || (!isModelFile(url) && !req.headers.has('range'));

async function withPolicy(res, url) {
  if (res.type === 'opaqueredirect' || res.status === 0) return res;
  const headers = new Headers(res.headers);
  headers.set('Content-Security-Policy', await policy(url));
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || req.method !== 'GET' || !handled(url, req)) return;
  event.respondWith(
    (async () => {
      try {
        const res = await fetch(req);
        if (res.ok && res.type === 'basic') {
          const copy = res.clone();
          event.waitUntil(caches.open(SHELL).then((c) => c.put(req, copy)));
        }
        return withPolicy(res, url);
      } catch (e) {
        const hit = await caches.match(req, { ignoreVary: true });
        if (hit) return withPolicy(hit, url);
        if (req.mode === 'navigate') {
          // Another page of this folder (e.g. index.html for the folder itself): the app's page.
          const shell = (await caches.match(BASE, { ignoreVary: true })) ?? (await caches.match(`${BASE}index.html`, { ignoreVary: true }));
          if (shell) return withPolicy(shell, url);
        }
        throw e;
      }
    })(),
  );
});
