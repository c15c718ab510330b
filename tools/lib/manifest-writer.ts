// Builds manifest.json for a converted model folder: every file with its size and SHA-256 (taken
// while the converter wrote it, or hashed here as a stream), the variants, and an architecture summary.
import { createReadStream } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, relative, sep } from 'node:path';
import type { Manifest, ManifestFile } from '../../src/molmo2/manifest.ts';
import { buildManifest, type ManifestInput as BaseManifestInput } from '../../src/molmo2/conversion.ts';

export const MANIFEST_FILE = 'manifest.json';

/** Every regular file under `dir`, as sorted forward-slash paths relative to it. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

export async function describeFile(dir: string, path: string): Promise<ManifestFile> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(join(dir, path), { highWaterMark: 1 << 22 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).byteLength;
  }
  return { path, bytes, sha256: hash.digest('hex') };
}

export { architectureSummary } from '../../src/molmo2/conversion.ts';

export interface ManifestInput extends BaseManifestInput {
  /**
   * Files whose size and SHA-256 were taken as they were written (must still be as written); the
   * others are read and hashed here.
   */
  hashed?: ReadonlyMap<string, ManifestFile>;
}

/** Hashes every file in `dir` (except manifest.json), checks the variants' files exist, writes manifest.json. */
export async function writeManifest(dir: string, input: ManifestInput): Promise<Manifest> {
  const paths = (await listFiles(dir)).filter((p) => p !== MANIFEST_FILE);
  const files: ManifestFile[] = [];
  for (const p of paths) {
    const known = input.hashed?.get(p);
    if (known && (await stat(join(dir, p))).size === known.bytes) files.push({ path: p, bytes: known.bytes, sha256: known.sha256 });
    else files.push(await describeFile(dir, p));
  }
  const manifest = buildManifest(input, files);
  await writeFile(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
