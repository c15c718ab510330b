// The tokenizer files of a MolmoPoint-layout checkpoint, generated from Molmo2-4B's. MolmoPoint's
// training tokenizer registers olmo/tokenizer.py's EXTRA_TOKENS, which since MolmoPoint end with
// four more special tokens after Molmo2's ten (<|points|> <|token_index|> <|vit_index|> <|vit_loc|>,
// so 151946–151949 here). convert_molmo_point_to_hf.py `save` then adds, as plain (non-special)
// tokens with `tokenizer.add_tokens`, padding tokens `<EXTRA_TOKENS_POINT_k>` up to the 128 new
// embedding rows and the 31,200 grounding tokens `<POINT_k>`, asserting that `<POINT_0>` is
// vocab_size + additional_vocab_size: the id the model generates for patch 0. Plain tokens are not
// skipped when decoding, so an answer's text spells its grounding ids out (`<POINT_12>`).
import type { AddedTokenJson } from '../../src/molmo2/tokenizer.ts';
import { readAssetJson } from './assets.ts';

type Json = Record<string, unknown>;

/** convert_molmo_point_to_hf.py N_POINT_TOKENS. */
export const N_POINT_TOKENS = 31200;
/** MolmoPoint's special tokens after Molmo2's (EXTRA_TOKENS order), from this id on. */
export const MOLMOPOINT_SPECIAL_FIRST = 151946;
export const MOLMOPOINT_SPECIAL = ['<|points|>', '<|token_index|>', '<|vit_index|>', '<|vit_loc|>'] as const;
/** Molmo2-4B's vocabulary + its 128 new rows: the id of `<POINT_0>`. */
export const POINT_TOKENS_FIRST = 151936 + 128;

export interface MolmoPointTokenizerFiles {
  'tokenizer.json': Json;
  'tokenizer_config.json': Json;
  'special_tokens_map.json': Json;
  'added_tokens.json': Json;
}

const token = (id: number, content: string, special: boolean): AddedTokenJson => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  // add_tokens(str) makes AddedToken(normalized=not special, special=special).
  normalized: !special,
  special,
});

/** The tokens MolmoPoint adds after Molmo2-4B's, in id order. */
export function molmoPointAddedTokens(): AddedTokenJson[] {
  const out = MOLMOPOINT_SPECIAL.map((content, i) => token(MOLMOPOINT_SPECIAL_FIRST + i, content, true));
  // EXTRA_TOKENS has 14 entries; the padding fills the rest of the 128 new rows.
  const padding = POINT_TOKENS_FIRST - (MOLMOPOINT_SPECIAL_FIRST + MOLMOPOINT_SPECIAL.length);
  for (let k = 0; k < padding; k++) out.push(token(MOLMOPOINT_SPECIAL_FIRST + MOLMOPOINT_SPECIAL.length + k, `<EXTRA_TOKENS_POINT_${k}>`, false));
  for (let k = 0; k < N_POINT_TOKENS; k++) out.push(token(POINT_TOKENS_FIRST + k, `<POINT_${k}>`, false));
  return out;
}

/** Every tokenizer file of a MolmoPoint-layout checkpoint; `base` is Molmo2-4B's tokenizer.json. */
export async function molmoPointTokenizerFiles(base: Json): Promise<MolmoPointTokenizerFiles> {
  const extra = molmoPointAddedTokens();
  const baseAdded = base.added_tokens as AddedTokenJson[];
  const last = Math.max(...baseAdded.map((t) => t.id));
  if (last !== MOLMOPOINT_SPECIAL_FIRST - 1) throw new Error(`Molmo2-4B's tokenizer ends at id ${last}, not ${MOLMOPOINT_SPECIAL_FIRST - 1}`);
  const added = [...baseAdded, ...extra];
  const config = await readAssetJson('tokenizer_config.json');
  const specials = [...(config.additional_special_tokens as string[]), ...MOLMOPOINT_SPECIAL];
  const decoder = { ...(config.added_tokens_decoder as Json), ...Object.fromEntries(extra.map(({ id, ...t }) => [String(id), t])) };
  const map = await readAssetJson('special_tokens_map.json');
  return {
    'tokenizer.json': { ...base, added_tokens: added },
    'tokenizer_config.json': { ...config, added_tokens_decoder: decoder, additional_special_tokens: specials },
    'special_tokens_map.json': { ...map, additional_special_tokens: specials },
    'added_tokens.json': Object.fromEntries(added.map((t) => [t.content, t.id])),
  };
}

/** Molmo2-4B's processor_config.json as MolmoPoint's converter writes it. */
export async function molmoPointProcessorConfig(): Promise<Json> {
  return {
    ...(await readAssetJson('processor_config.json')),
    // convert_molmo_point_to_hf.py: the global view is written as <im_low> (not pointable).
    use_low_res_token_for_global_crops: true,
    // From the training video config (launch_scripts/pretrain.py, --model molmo_point), as config.json's.
    use_frame_special_tokens: true,
  };
}
