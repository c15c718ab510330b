// Vite plugin: the app's Content-Security-Policy (src/security/csp.ts) as a response header of the
// dev and preview servers and as a <meta> in index.html (for static hosts that send no header), and
// its directives as /csp.json for the service worker.
import type { Plugin } from 'vite';
import { CSP_DIRECTIVES, metaPolicyText, policyText } from '../src/security/csp.ts';

export function securityPolicy(): Plugin {
  const header = policyText();
  const json = JSON.stringify(CSP_DIRECTIVES);
  type Res = { setHeader(k: string, v: string): void; end(body: string): void };
  const addHeader = (server: { middlewares: { use(fn: (req: { url?: string }, res: Res, next: () => void) => void): unknown } }): void => {
    server.middlewares.use((req, res, next) => {
      res.setHeader('Content-Security-Policy', header);
      if (req.url?.split('?')[0] === '/csp.json') {
        res.setHeader('Content-Type', 'application/json');
        return res.end(json);
      }
      res.setHeader('Referrer-Policy', 'no-referrer');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      next();
    });
  };
  return {
    name: 'molmo2-security-policy',
    configureServer: addHeader,
    configurePreviewServer: addHeader,
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: 'csp.json', source: json });
    },
    transformIndexHtml: () => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: metaPolicyText() }, injectTo: 'head-prepend' }],
  };
}
