import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { modelsIndex } from './tools/vite-models-index.ts';
import { securityPolicy } from './tools/vite-security-policy.ts';

const publicDir = fileURLToPath(new URL('./public', import.meta.url));

// onnxruntime-web must not be pre-bundled: pre-bundling breaks its `new URL('*.wasm', import.meta.url)`.
export default defineConfig({
  // /models/index.json lists the converted models in public/models/; every response carries the CSP.
  plugins: [modelsIndex(), securityPolicy()],
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
