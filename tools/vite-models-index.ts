// Vite plugin: serves /models/index.json, the list of converted models in public/models/ (folders
// with a manifest.json), so the page can offer them without knowing their names. In dev the list is
// read on every request (new conversions show up without a restart); `vite build` writes it once.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
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
        variants: ((m.variants ?? []) as ModelVariant[]).map((v) => ({ dtype: v.dtype, bytes: variantDownloadBytes(m, v) })),
      });
    } catch {
      // A manifest being rewritten right now: list it next time.
    }
  }
  return out.sort((a, b) => Number(a.randomWeights) - Number(b.randomWeights) || a.name.localeCompare(b.name));
}

export function modelsIndex(publicDir = 'public'): Plugin {
  const dir = () => resolve(publicDir, 'models');
  return {
    name: 'molmo2-models-index',
    configureServer(server) {
      server.middlewares.use('/models/index.json', (_req, res) => {
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('Cache-Control', 'no-store');
        res.end(JSON.stringify(listBundledModels(dir())));
      });
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: 'models/index.json', source: JSON.stringify(listBundledModels(dir())) });
    },
  };
}
