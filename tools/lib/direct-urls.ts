// A fetch for streaming a checkpoint from the Hub that spares its resolve endpoint. The Hub answers
// a weight file's resolve URL with a redirect to a signed download URL (its CDN); following that
// redirect on every Range request would count each one against the Hub's rate limit on resolve
// requests (a few thousand per 5 minutes), and a 19 GB checkpoint read in 4 MiB blocks makes ~10,000.
// This fetch asks once per URL (a HEAD request without following the redirect), then sends Range
// requests straight to the download URL for `ttlMs`. The token goes only to the resolve URL's own
// origin. When the download URL is refused (expired: 401/403/404/410) the resolve URL is used for
// that request and asked again next time.

export interface DirectFetchOptions {
  /** How long a download URL is used before the resolve URL is asked again (default 10 min; the Hub's are valid for about an hour). */
  ttlMs?: number;
  /** Time limit of the HEAD request (default 60 s); without an answer the resolve URL is used. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const REFUSED = new Set([401, 403, 404, 410]);

export function directUrlFetch(opts: DirectFetchOptions = {}): typeof fetch {
  const base = opts.fetch ?? fetch;
  const ttl = opts.ttlMs ?? 10 * 60_000;
  const cache = new Map<string, { url: Promise<string>; until: number }>();

  const directUrl = (url: string, headers: Record<string, string>, signal?: AbortSignal | null): Promise<string> => {
    const hit = cache.get(url);
    if (hit && hit.until > Date.now()) return hit.url;
    const entry = { url: Promise.resolve(url), until: Date.now() + ttl };
    cache.set(url, entry);
    entry.url = (async () => {
      try {
        const auth = headers.authorization ?? headers.Authorization;
        // Aborted by the caller's signal or the time limit (AbortSignal.any needs Node 20.3).
        const abort = new AbortController();
        const timer = setTimeout(() => abort.abort(new Error('no answer')), opts.timeoutMs ?? 60_000);
        const onAbort = () => abort.abort(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        try {
          const res = await base(url, { method: 'HEAD', headers: auth ? { authorization: auth } : {}, redirect: 'manual', signal: abort.signal });
          const location = res.headers.get('location');
          if (res.status >= 300 && res.status < 400 && location) return new URL(location, url).href;
        } finally {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        }
      } catch {
        // Use the resolve URL this time (its own answer says what is wrong) and ask again next time.
        if (cache.get(url) === entry) cache.delete(url);
      }
      return url;
    })();
    return entry.url;
  };

  return (async (input: string | URL | Request, init?: RequestInit) => {
    const method = init?.method ?? 'GET';
    if (typeof input !== 'string' || method !== 'GET') return base(input, init);
    const headers = { ...((init?.headers as Record<string, string> | undefined) ?? {}) };
    const url = await directUrl(input, headers, init?.signal);
    if (url === input) return base(input, init);
    const sameOrigin = new URL(url).origin === new URL(input).origin;
    const direct = sameOrigin ? headers : Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
    const res = await base(url, { ...init, headers: direct });
    if (!REFUSED.has(res.status)) return res;
    await res.body?.cancel();
    cache.delete(input);
    return base(input, init);
  }) as typeof fetch;
}
