// Service worker: keeps the app shell (every same-origin file the app fetched) for offline use,
// and gives every page and worker it serves the app's Content-Security-Policy, whose connect-src
// lists this origin plus the model hosts the user chose. The one worker that sends questions to an
// answer server (workers/server-ask.worker.ts) gets that server's origin instead, and only while the
// user has it on; no other page or worker ever gets it. Model weights are cached by the app in OPFS,
// not here.
const SHELL = 'molmo2-web-shell-v1';
const SETTINGS = 'molmo2-web-settings';
const HOSTS_KEY = '/__molmo2/model-hosts';
const SERVER_KEY = '/__molmo2/server-host';
const POLICY_URL = '/csp.json';
// The server worker's script: /workers/server-ask.worker.ts in development, assets/server-ask.worker-<hash>.js built.
const isServerWorker = (url) => /\/server-ask\.worker[^/]*\.(?:ts|js)$/.test(url.pathname);
const isOrigin = (origin) => typeof origin === 'string' && /^https?:\/\/[^/]+$/.test(origin);

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.add(POLICY_URL)).then(() => self.skipWaiting()));
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
const isModelFile = (url) => url.pathname.startsWith('/models/') && url.pathname !== '/models/index.json';
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
          const shell = await caches.match('/', { ignoreVary: true });
          if (shell) return withPolicy(shell, url);
        }
        throw e;
      }
    })(),
  );
});
