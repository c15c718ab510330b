// Prompt assembly of Molmo2: the checkpoint's chat template renders the text around the visual
// placeholders (chat-template.ts); here each placeholder is expanded into image/video tokens as the
// processor does, BOS is inserted, and token_type_ids, the positions of the tokens that take an image
// feature and the pooling indices of the whole prompt are computed in token order. MolmoPoint's
// processor (use_low_res_token_for_global_crops) writes the global view as `<im_low>` tokens, which
// take features like `<im_patch>` but mark the tokens a point cannot name.
import { ChatTemplateError, countOf, IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, type ChatTemplate, type Conversation } from './chat-template.ts';
import { RELEASED_PROCESSOR_SETTINGS, type ProcessorSettings, type TokenIds } from './config.ts';
import { planVideoFrame, type ImagePlan, type VideoFramePlan } from './image.ts';
import type { TextTokenizer } from './tokenizer.ts';

export { IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, type ChatTemplate, type ChatTurn, type Conversation } from './chat-template.ts';

/** The visual input of one prompt: images or one video (the processor does not mix them). */
export type VisualInput =
  | { kind: 'none' }
  | { kind: 'images'; plans: ImagePlan[] }
  | { kind: 'video'; timestamps: number[]; frame?: VideoFramePlan };

/** A prompt piece: text for the tokenizer, or token ids placed as they are. */
export type PromptPiece = { text: string } | { ids: number[] };

export interface BuiltPrompt {
  inputIds: Int32Array;
  /** 1 for image-special tokens (<im_patch>, <im_col>, starts and ends), else 0. */
  tokenTypeIds: Uint8Array;
  /**
   * Positions of the tokens that take an image feature, ascending: the <im_patch> tokens, and the
   * global view's <im_low> tokens when the processor writes them (MolmoPoint).
   */
  imagePatchPositions: Int32Array;
  /** [imagePatchPositions.length, poolSize] pooling indices into the flattened features of all
   * crops (images) or frames (video) of this prompt, in token order; −1 = padding. */
  pooledIdx: Int32Array;
  poolSize: number;
  /** ViT crops the prompt expects in pixel_values: Σ plan.numCrops for images, frame count for video. */
  numCrops: number;
}

const IM_START = '<|im_start|>';
const IM_END = '<|im_end|>';

/**
 * `f"{t:.1f}"` as Python formats it: the exact binary value rounded to one decimal, ties to even
 * (0.25 → "0.2", 0.75 → "0.8"). Number.prototype.toFixed breaks exact ties upwards instead.
 */
export function formatTimestamp(t: number): string {
  if (!Number.isFinite(t) || t < 0) throw new Error(`timestamp must be a finite number ≥ 0, got ${t}`);
  if (t >= 1e20) throw new Error(`timestamp ${t} is out of range`);
  const exact = t.toFixed(100); // exact decimal expansion of the double (within 100 digits)
  const dot = exact.indexOf('.');
  const tenths = Number(exact[dot + 1]);
  if (/^50*$/.test(exact.slice(dot + 2)) && tenths % 2 === 0) return exact.slice(0, dot + 2);
  return t.toFixed(1);
}

/**
 * The Molmo2-4B template's text of a conversation (everything after the visual placeholders):
 * `<|im_start|>user\n{q}<|im_end|>\n` for the first question, ` <|im_start|>assistant\n{a}` for each
 * earlier answer (with the template's leading space), `<|im_end|>\n` before every later question, then
 * `<|im_start|>assistant\n`. Only for token *estimates* made without a loaded model (limits.ts);
 * prompts are always rendered from the checkpoint's own template (buildPrompt).
 */
export function conversationText(c: Conversation): string {
  let s = '';
  const history = c.history ?? [];
  history.forEach((turn, k) => {
    s += (k > 0 ? `${IM_END}\n` : '') + `${IM_START}user\n${turn.question}${IM_END}\n`;
    s += ` ${IM_START}assistant\n${turn.answer}`;
  });
  s += (history.length > 0 ? `${IM_END}\n` : '') + `${IM_START}user\n${c.question}${IM_END}\n`;
  return s + `${IM_START}assistant\n`;
}

function repeatInto(out: number[], id: number, n: number): void {
  for (let i = 0; i < n; i++) out.push(id);
}

/** Token ids of one image's visual block: global view, then the hi-res crops (processor `get_image_tokens`). */
export function imageBlockIds(plan: ImagePlan, tokens: TokenIds, settings: ProcessorSettings = RELEASED_PROCESSOR_SETTINGS): number[] {
  const ids: number[] = [];
  ids.push(settings.useSingleCropStartToken ? tokens.lowResImageStart : tokens.imageStart);
  const [gh, gw] = plan.globalGrid;
  const globalToken = settings.useLowResTokenForGlobalCrops ? tokens.imageLowRes : tokens.imagePatch;
  for (let r = 0; r < gh; r++) {
    repeatInto(ids, globalToken, gw);
    if (settings.useSingleCropColTokens) ids.push(tokens.imageCol);
  }
  ids.push(tokens.imageEnd, tokens.imageStart);
  const [hh, hw] = plan.hiResGrid;
  for (let r = 0; r < hh; r++) {
    repeatInto(ids, tokens.imagePatch, hw);
    if (settings.imageUseColTokens) ids.push(tokens.imageCol);
  }
  ids.push(tokens.imageEnd);
  if (ids.length !== plan.numTokens) throw new Error(`image block has ${ids.length} tokens but the plan counts ${plan.numTokens}; plan and settings disagree`);
  return ids;
}

/** Token ids of one video frame's visual block (timestamp text excluded). */
export function frameBlockIds(frame: VideoFramePlan, tokens: TokenIds, settings: ProcessorSettings = RELEASED_PROCESSOR_SETTINGS): number[] {
  const ids: number[] = [settings.useFrameSpecialTokens ? tokens.frameStart : tokens.imageStart];
  const [h, w] = frame.grid;
  for (let r = 0; r < h; r++) {
    repeatInto(ids, tokens.imagePatch, w);
    if (settings.videoUseColTokens) ids.push(tokens.imageCol);
  }
  ids.push(settings.useFrameSpecialTokens ? tokens.frameEnd : tokens.imageEnd);
  return ids;
}

/** A question or answer that the prompt cannot carry (it holds a placeholder or image tokens). */
export class PromptTextError extends Error {}

/**
 * The prompt as pieces in sequence order: BOS, then the chat template's text with each `<|image|>`
 * replaced by that image's visual block and the `<|video|>` by every frame's `"{t:.1f} "` timestamp
 * (with a space before it from the second frame on) and visual block. The template decides the
 * text (for Molmo2: `Image k` before each of several images, then the turns); a BOS it writes at
 * the start is not doubled.
 */
export function promptPieces(
  visual: VisualInput,
  c: Conversation,
  template: ChatTemplate,
  tokens: TokenIds,
  settings: ProcessorSettings = RELEASED_PROCESSOR_SETTINGS,
): PromptPiece[] {
  if (visual.kind === 'images' && visual.plans.length === 0) throw new Error('an image prompt needs at least one image');
  if (visual.kind === 'video' && visual.timestamps.length === 0) throw new Error('a video prompt needs at least one frame');
  for (const text of [c.question, ...(c.history ?? []).flatMap((t) => [t.question, t.answer])]) {
    for (const p of [IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER]) {
      if (text.includes(p)) throw new PromptTextError(`a question or answer must not contain ${p}`);
    }
  }
  const images = visual.kind === 'images' ? visual.plans.length : 0;
  const videos = visual.kind === 'video' ? 1 : 0;
  let text = template.render({ images, videos }, c);
  const bos = template.tokens.bos_token;
  if (bos && text.startsWith(bos)) text = text.slice(bos.length);
  if (countOf(text, IMAGE_PLACEHOLDER) !== images || countOf(text, VIDEO_PLACEHOLDER) !== videos) {
    throw new ChatTemplateError(
      template.name,
      `it rendered ${countOf(text, IMAGE_PLACEHOLDER)} ${IMAGE_PLACEHOLDER} and ${countOf(text, VIDEO_PLACEHOLDER)} ${VIDEO_PLACEHOLDER} ` +
        `placeholders for ${images} image(s) and ${videos} video(s)`,
    );
  }

  const pieces: PromptPiece[] = [{ ids: [tokens.bos] }];
  const addText = (s: string) => {
    if (s) pieces.push({ text: s });
  };
  let image = 0;
  const placeholder = /<\|image\|>|<\|video\|>/g;
  let at = 0;
  for (const m of text.matchAll(placeholder)) {
    addText(text.slice(at, m.index));
    at = m.index + m[0].length;
    if (m[0] === IMAGE_PLACEHOLDER && visual.kind === 'images') {
      pieces.push({ ids: imageBlockIds(visual.plans[image++], tokens, settings) });
    } else if (m[0] === VIDEO_PLACEHOLDER && visual.kind === 'video') {
      const block = frameBlockIds(visual.frame ?? planVideoFrame(settings), tokens, settings);
      visual.timestamps.forEach((t, k) => {
        pieces.push({ text: `${k > 0 ? ' ' : ''}${formatTimestamp(t)} ` });
        pieces.push({ ids: block });
      });
    }
  }
  addText(text.slice(at));
  return pieces;
}

function imageTokenSet(tokens: TokenIds): Set<number> {
  return new Set([
    tokens.imagePatch,
    tokens.imageCol,
    tokens.imageStart,
    tokens.lowResImageStart,
    tokens.frameStart,
    tokens.imageEnd,
    tokens.frameEnd,
    tokens.imageLowRes,
  ]);
}

/** Pooling indices of the whole prompt: each item's indices shifted past the crops before it. */
function promptPooling(visual: VisualInput, settings: ProcessorSettings, patchesPerCrop: number): { idx: Int32Array; P: number; crops: number } {
  if (visual.kind === 'images') {
    const P = visual.plans[0].pooledShape[1];
    const rows = visual.plans.reduce((n, p) => n + p.pooledShape[0], 0);
    const idx = new Int32Array(rows * P);
    let at = 0;
    let crops = 0;
    for (const plan of visual.plans) {
      if (plan.pooledShape[1] !== P) throw new Error('all images of a prompt must use the same pool size');
      const offset = crops * patchesPerCrop;
      for (let i = 0; i < plan.pooledIdx.length; i++) idx[at + i] = plan.pooledIdx[i] >= 0 ? plan.pooledIdx[i] + offset : -1;
      at += plan.pooledIdx.length;
      crops += plan.numCrops;
    }
    return { idx, P, crops };
  }
  if (visual.kind === 'video') {
    const frame = visual.frame ?? planVideoFrame(settings);
    const P = frame.pooledShape[1];
    const per = frame.pooledIdx.length;
    const idx = new Int32Array(per * visual.timestamps.length);
    for (let f = 0; f < visual.timestamps.length; f++) {
      for (let i = 0; i < per; i++) idx[f * per + i] = frame.pooledIdx[i] >= 0 ? frame.pooledIdx[i] + f * patchesPerCrop : -1;
    }
    return { idx, P, crops: visual.timestamps.length };
  }
  return { idx: new Int32Array(0), P: 0, crops: 0 };
}

export interface BuildPromptOptions {
  tokenizer: TextTokenizer;
  /** The checkpoint's chat template (compileChatTemplate). */
  chatTemplate: ChatTemplate;
  tokens: TokenIds;
  visual: VisualInput;
  conversation: Conversation;
  settings?: ProcessorSettings;
  /** ViT patches per crop (729 for 378-px crops of 14-px patches). */
  patchesPerCrop?: number;
}

/** Token ids and the model-side metadata of a complete Molmo2 prompt. */
export function buildPrompt(o: BuildPromptOptions): BuiltPrompt {
  const settings = o.settings ?? RELEASED_PROCESSOR_SETTINGS;
  const patchesPerCrop = o.patchesPerCrop ?? 729;
  if (!o.conversation.question.trim()) throw new Error('the question is empty');

  const ids: number[] = [];
  for (const piece of promptPieces(o.visual, o.conversation, o.chatTemplate, o.tokens, settings)) {
    if ('ids' in piece) ids.push(...piece.ids);
    else for (const id of o.tokenizer.encode(piece.text)) ids.push(id);
  }

  const special = imageTokenSet(o.tokens);
  const tokenTypeIds = new Uint8Array(ids.length);
  const patches: number[] = [];
  // <im_low> takes a feature only where the processor writes it for the global view (MolmoPoint).
  const lowRes = settings.useLowResTokenForGlobalCrops ? o.tokens.imageLowRes : -1;
  ids.forEach((id, i) => {
    if (special.has(id)) tokenTypeIds[i] = 1;
    if (id === o.tokens.imagePatch || id === lowRes) patches.push(i);
  });

  const pool = promptPooling(o.visual, settings, patchesPerCrop);
  const poolRows = pool.P === 0 ? 0 : pool.idx.length / pool.P;
  if (patches.length !== poolRows) {
    throw new PromptTextError(
      `the prompt has ${patches.length} image tokens but the visual input provides ${poolRows} features; ` +
        'the question text must not contain image tokens',
    );
  }
  return {
    inputIds: Int32Array.from(ids),
    tokenTypeIds,
    imagePatchPositions: Int32Array.from(patches),
    pooledIdx: pool.idx,
    poolSize: pool.P,
    numCrops: pool.crops,
  };
}

/**
 * The processor's text for this prompt, with every token spelt out (`<im_patch>`, `<|im_end|>`…):
 * what a checkpoint tokenizer would be given after BOS insertion. For logs and for checking.
 */
export function promptString(
  visual: VisualInput,
  c: Conversation,
  template: ChatTemplate,
  tokens: TokenIds,
  tokenName: (id: number) => string,
  settings: ProcessorSettings = RELEASED_PROCESSOR_SETTINGS,
): string {
  return promptPieces(visual, c, template, tokens, settings)
    .map((p) => ('text' in p ? p.text : p.ids.map(tokenName).join('')))
    .join('');
}
