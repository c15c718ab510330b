// Vite plugin (build only): writes precache.json, the built app's files, which the service worker
// (public/sw.js) fetches when it installs, so that the app opens offline after a single visit (the
// page and its first scripts load before the service worker exists, so it would not see them).
// Left out: the onnxruntime wasm files (18 and 29 MB, of which a browser uses one; kept when a model
// is first loaded), the service worker itself and this list.
import type { Plugin } from 'vite';

export function offlineShell(): Plugin {
  return {
    name: 'molmo2-offline-shell',
    apply: 'build',
    generateBundle: {
      // After every other plugin's files (index.html, csp.json, public/'s copies) are in the bundle.
      order: 'post',
      handler(_options, bundle) {
        const files = Object.keys(bundle).filter((f) => !f.endsWith('.wasm') && f !== 'sw.js' && !f.endsWith('.map'));
        // './': the folder's own address, the one users open (a static host answers it with index.html).
        this.emitFile({ type: 'asset', fileName: 'precache.json', source: JSON.stringify(['./', ...files.sort()], null, 1) });
      },
    },
  };
}
