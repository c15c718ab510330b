// Which part of the decoder's KV cache a new prompt can keep (prefix reuse). Exact, not approximate:
// a cached position's keys and values depend on the tokens before it and — through Molmo2's prefill
// mask, where image tokens see every image token — on the image tokens after it. So a prefix of
// length n is reusable when both sequences agree on it (ids, types and the pixels behind the image
// tokens) and neither has an image token at or after n. Questions about the same frames share
// BOS + the visual blocks; everything after is text.

export interface CachedSequence {
  ids: ArrayLike<number>;
  types: ArrayLike<number>;
  /** Identity of the pixels behind the image tokens ('' without visuals, undefined when unknown). */
  visualId: string | undefined;
}

function lastImageIndex(types: ArrayLike<number>, length = types.length): number {
  for (let i = length - 1; i >= 0; i--) if (types[i] === 1) return i;
  return -1;
}

/**
 * Tokens of `cached` that `next` can keep: at most next.length − 1, so the prefill still produces the
 * last position's logits. 0 when nothing can be kept.
 */
export function reusablePrefix(cached: CachedSequence, next: CachedSequence): number {
  const limit = Math.min(cached.ids.length, next.ids.length - 1);
  let n = 0;
  while (n < limit && cached.ids[n] === next.ids[n] && cached.types[n] === next.types[n]) n++;
  const lastImage = Math.max(lastImageIndex(cached.types), lastImageIndex(next.types));
  if (lastImage < 0) return n;
  // Image tokens inside the prefix: the same pixels, and every image token of both prompts inside it.
  if (cached.visualId === undefined || next.visualId === undefined || cached.visualId !== next.visualId) return 0;
  return n > lastImage ? n : 0;
}
