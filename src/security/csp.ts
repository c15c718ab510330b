// The app's Content-Security-Policy, from csp.json beside this file (the one list the dev server's
// headers, the page's <meta> and the service worker, which reads it as /csp.json, all use). Network connections go only to the app's own origin,
// plus, for the inference worker, the model hosts the user chose, and, for the server worker alone,
// the answer server the user confirmed (both added by the service worker, public/sw.js).
import directives from './csp.json' with { type: 'json' };

export type Directives = Record<string, string[]>;

export const CSP_DIRECTIVES: Directives = directives;

/** The policy text, with extra origins allowed in connect-src. */
export function policyText(modelOrigins: string[] = [], d: Directives = CSP_DIRECTIVES): string {
  return Object.entries(d)
    .map(([name, values]) => [name, ...values, ...(name === 'connect-src' ? modelOrigins : [])].join(' '))
    .join('; ');
}

/** What a <meta> policy may say (frame-ancestors works only as a header). */
export function metaPolicyText(): string {
  const { 'frame-ancestors': _ignored, ...rest } = CSP_DIRECTIVES;
  return policyText([], rest);
}

/** An origin a model may be fetched from: http(s) only, normalised (no path). */
export function modelOrigin(url: string, base: string): string | undefined {
  try {
    const u = new URL(url, base);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}
