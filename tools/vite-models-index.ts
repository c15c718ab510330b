// Vite plugin: serves /models/index.json, the list of converted models in public/models/ (folders
// with a manifest.json), so the page can offer them without knowing their names. In dev the list is
// read on every request (new conversions show up without a restart).
//
// `vite build` ships no model: it copies public/ without models/ and writes an empty list. A converted
// Molmo2-4B is several GB (more than many static hosts take, and every deploy would upload it again),
// the tiny demo and test models have random weights (meaningless on a real site), and a test run may
// be converting one into public/models/ while a build runs. A built app loads its model from a URL
// (any host with CORS, or a folder copied beside it) or a local folder, and keeps it in the browser.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Plugin } from 'vite';
import { variantDownloadBytes, type BundledModel, type ModelVariant } from '../src/molmo2/manifest.ts';

export function listBundledModels(modelsDir: string): BundledModel[] {
  if (!existsSync(modelsDir)) return [];
  const out: BundledModel[] = [];
  for (const entry of readdirSync(modelsDir, { withFileTypes: true })) {
    // Unfinished conversions are written as <name>.tmp-<pid> and replaced folders as <name>.old-<pid>.
    if (!entry.isDirectory() || /\.(tmp|old)-\d+$/.test(entry.name)) continue;
    const path = join(modelsDir, entry.name, 'manifest.json');
    if (!existsSync(path)) continue;
    try {
      const m = JSON.parse(readFileSync(path, 'utf8'));
      out.push({
        folder: entry.name,
        name: String(m.name ?? entry.name),
        randomWeights: Boolean(m.architecture?.randomWeights),
        source: { repo: String(m.source?.repo ?? '') },
        parameters: Number(m.architecture?.parameters ?? 0),
        variants: ((m.variants ?? []) as ModelVariant[]).map((v) => ({ dtype: v.dtype, bytes: variantDownloadBytes(m, v) })),
      });
    } catch {
      // A manifest being rewritten right now: list it next time.
    }
  }
  return out.sort((a, b) => Number(a.randomWeights) - Number(b.randomWeights) || a.name.localeCompare(b.name));
}

/** The files under `dir` (relative paths with '/'), leaving out the folder `skip` at its top. */
function filesBelow(dir: string, skip: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'))
    .filter((path) => path.split('/')[0] !== skip);
}

export function modelsIndex(publicDir = 'public'): Plugin {
  const dir = () => resolve(publicDir, 'models');
  let builtPublicDir = '';
  return {
    name: 'molmo2-models-index',
    configureServer(server) {
      server.middlewares.use('/models/index.json', (_req, res) => {
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('Cache-Control', 'no-store');
        res.end(JSON.stringify(listBundledModels(dir())));
      });
    },
    // The build copies public/ itself (below), without models/.
    config: () => ({ build: { copyPublicDir: false } }),
    configResolved(config) {
      builtPublicDir = config.publicDir;
    },
    generateBundle() {
      if (builtPublicDir && existsSync(builtPublicDir)) {
        for (const fileName of filesBelow(builtPublicDir, 'models')) this.emitFile({ type: 'asset', fileName, source: readFileSync(join(builtPublicDir, fileName)) });
      }
      const none: BundledModel[] = [];
      this.emitFile({ type: 'asset', fileName: 'models/index.json', source: JSON.stringify(none) });
    },
  };
}
