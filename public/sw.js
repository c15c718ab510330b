// Service worker: keeps the app shell (every same-origin file the app fetched) for offline use,
// and gives every page and worker it serves the app's Content-Security-Policy, whose connect-src
// lists this origin plus the model hosts the user chose. Model weights are cached by the app in
// OPFS, not here.
const SHELL = 'molmo2-web-shell-v1';
const SETTINGS = 'molmo2-web-settings';
const HOSTS_KEY = '/__molmo2/model-hosts';
const POLICY_URL = '/csp.json';

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.add(POLICY_URL)).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

async function modelHosts() {
  const hit = await (await caches.open(SETTINGS)).match(HOSTS_KEY);
  return hit ? hit.json() : [];
}

async function policy() {
  const res = (await caches.match(POLICY_URL)) ?? (await fetch(POLICY_URL));
  const directives = await res.clone().json();
  const hosts = await modelHosts();
  return Object.entries(directives)
    .map(([name, values]) => [name, ...values, ...(name === 'connect-src' ? hosts : [])].join(' '))
    .join('; ');
}

self.addEventListener('message', (event) => {
  const { type, origin } = event.data ?? {};
  if (type !== 'allow-model-host' || typeof origin !== 'string' || !/^https?:\/\/[^/]+$/.test(origin)) return;
  event.waitUntil(
    (async () => {
      const hosts = await modelHosts();
      if (!hosts.includes(origin)) hosts.push(origin);
      await (await caches.open(SETTINGS)).put(HOSTS_KEY, new Response(JSON.stringify(hosts), { headers: { 'Content-Type': 'application/json' } }));
      event.ports[0]?.postMessage({ ok: true, hosts });
    })(),
  );
});

// What this worker answers: pages and worker scripts (they get the policy) and the app's own files
// (kept for offline use). Model files (cached by the app in OPFS) and ranged reads go straight to
// the network.
const isModelFile = (url) => url.pathname.startsWith('/models/') && url.pathname !== '/models/index.json';
const handled = (url, req) => req.mode === 'navigate' || req.destination === 'worker' || (!isModelFile(url) && !req.headers.has('range'));

async function withPolicy(res) {
  if (res.type === 'opaqueredirect' || res.status === 0) return res;
  const headers = new Headers(res.headers);
  headers.set('Content-Security-Policy', await policy());
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
        return withPolicy(res);
      } catch (e) {
        const hit = await caches.match(req, { ignoreVary: true });
        if (hit) return withPolicy(hit);
        if (req.mode === 'navigate') {
          const shell = await caches.match('/', { ignoreVary: true });
          if (shell) return withPolicy(shell);
        }
        throw e;
      }
    })(),
  );
});
