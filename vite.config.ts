import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { modelsIndex } from './tools/vite-models-index.ts';
import { offlineShell } from './tools/vite-offline-shell.ts';
import { securityPolicy } from './tools/vite-security-policy.ts';

const publicDir = fileURLToPath(new URL('./public', import.meta.url));

// onnxruntime-web must not be pre-bundled: pre-bundling breaks its `new URL('*.wasm', import.meta.url)`.
export default defineConfig({
  // Relative addresses in the build (./assets/…, new URL('x', import.meta.url)), so dist/ works from
  // any folder of a static host; the app's own code does the same (src/app-url.ts, public/sw.js).
  base: './',
  // /models/index.json lists the converted models in public/models/ (a build ships none); every
  // response carries the CSP; a build lists its files for the service worker to keep offline.
  plugins: [modelsIndex(), securityPolicy(), offlineShell()],
  // Browser tests (E2E_STATIC=1) serve a fixed snapshot: no HMR and only public/ watched, so an edit
  // made while a test runs can never reload its page, while a model a test converts into public/models/
  // is served (Vite serves only the public files it knows of).
  server: {
    port: 5173,
    strictPort: true,
    host: '127.0.0.1',
    ...(process.env.E2E_STATIC ? { hmr: false, watch: { ignored: (path: string) => !path.startsWith(publicDir) } } : {}),
  },
  preview: { port: 5173, strictPort: true, host: '127.0.0.1' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  worker: { format: 'es' },
  oxc: { jsx: { runtime: 'automatic' } },
  build: { target: 'es2022', chunkSizeWarningLimit: 2048 },
});
