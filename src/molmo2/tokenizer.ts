// Text tokenization for Molmo2 prompts and decoding of generated ids, on top of
// @huggingface/tokenizers loaded from a checkpoint's tokenizer.json + tokenizer_config.json.
import { Tokenizer } from '@huggingface/tokenizers';

type Json = Record<string, unknown>;

/** What prompt assembly needs from a tokenizer: text → ids, with no BOS/EOS added. */
export interface TextTokenizer {
  encode(text: string): number[];
}

/** One entry of tokenizer.json's `added_tokens`. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/**
 * Returns tokenizer.json with every token of tokenizer_config.json's `added_tokens_decoder` present in
 * `added_tokens`. A Molmo2 checkpoint's tokenizer.json already has them all; a base Qwen3
 * tokenizer.json paired with Molmo2's tokenizer_config.json lacks the image tokens (151936…), which
 * this adds so that such text splits on them exactly like the checkpoint tokenizer does.
 */
export function mergeAddedTokens(tokenizerJson: Json, tokenizerConfig: Json): Json {
  const existing = Array.isArray(tokenizerJson.added_tokens) ? (tokenizerJson.added_tokens as AddedTokenJson[]) : [];
  const byId = new Map(existing.map((t) => [t.id, t]));
  const decoder = (tokenizerConfig.added_tokens_decoder ?? {}) as Record<string, Partial<AddedTokenJson>>;
  const merged = [...existing];
  for (const [idText, t] of Object.entries(decoder)) {
    const id = Number(idText);
    if (!Number.isInteger(id) || byId.has(id) || typeof t.content !== 'string') continue;
    merged.push({
      id,
      content: t.content,
      single_word: t.single_word ?? false,
      lstrip: t.lstrip ?? false,
      rstrip: t.rstrip ?? false,
      normalized: t.normalized ?? false,
      special: t.special ?? true,
    });
  }
  merged.sort((a, b) => a.id - b.id);
  return { ...tokenizerJson, added_tokens: merged };
}

/** A checkpoint tokenizer with the two operations the product needs. */
export class Molmo2Tokenizer implements TextTokenizer {
  private readonly tok: Tokenizer;
  /** Ids the decoder drops when skipping special tokens (added tokens flagged `special`). */
  private readonly specialIds: Set<number>;

  constructor(tokenizerJson: Json, tokenizerConfig: Json) {
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
      throw new Error('tokenizer.json is not a Hugging Face tokenizer file (no "model" section)');
    }
    const json = mergeAddedTokens(tokenizerJson, tokenizerConfig ?? {});
    this.tok = new Tokenizer(json, tokenizerConfig ?? {});
    this.specialIds = new Set((json.added_tokens as AddedTokenJson[]).filter((t) => t.special).map((t) => t.id));
  }

  /** Ids of `text`, splitting on added tokens (e.g. `<|im_start|>`), with no BOS/EOS added. */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  /** Id of a token string, or undefined when the vocabulary lacks it. */
  tokenId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /**
   * Text of generated ids, as `processor.post_process_image_text_to_text` gives it
   * (skip_special_tokens, no clean-up of tokenization spaces). Ids the vocabulary does not know are
   * dropped rather than decoded as garbage.
   */
  decode(ids: ArrayLike<number>, { skipSpecialTokens = true } = {}): string {
    const kept: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]);
      if (this.tok.id_to_token(id) === undefined) continue;
      if (skipSpecialTokens && this.specialIds.has(id)) continue;
      kept.push(id);
    }
    if (kept.length === 0) return '';
    return this.tok.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }
}
