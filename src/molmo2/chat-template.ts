// The checkpoint's chat template (`chat_template.jinja`, or `chat_template` in tokenizer_config.json),
// compiled once with @huggingface/jinja and rendered the way transformers' `apply_chat_template` does
// (trim_blocks + lstrip_blocks, the tokenizer's special tokens in the context, add_generation_prompt).
// The template writes the text of the prompt with one `<|image|>` / `<|video|>` placeholder per image /
// video; expanding those into image tokens is the processor's job (prompt.ts), not the template's.
import { Template } from '@huggingface/jinja';

export const IMAGE_PLACEHOLDER = '<|image|>';
export const VIDEO_PLACEHOLDER = '<|video|>';

/** One earlier exchange of a conversation, replayed before a follow-up question. */
export interface ChatTurn {
  question: string;
  answer: string;
}

export interface Conversation {
  question: string;
  /** Earlier questions and the model's answers, oldest first. */
  history?: ChatTurn[];
}

/** What the template is told about the visual input: images and videos are each one content item. */
export interface VisualCounts {
  images: number;
  videos: number;
}

/** A chat template that cannot be used; the message starts with the template's name. */
export class ChatTemplateError extends Error {
  constructor(
    readonly templateName: string,
    readonly reason: string,
  ) {
    super(`${templateName}: ${reason}`);
    this.name = 'ChatTemplateError';
  }
}

/** Special tokens of the tokenizer, as transformers puts them in the template's context. */
export interface ChatTemplateTokens {
  bos_token?: string;
  eos_token?: string;
  pad_token?: string;
  unk_token?: string;
}

export interface ChatTemplate {
  /** Where the template came from (`chat_template.jinja`, `tokenizer_config.json chat_template`…). */
  readonly name: string;
  readonly tokens: ChatTemplateTokens;
  /**
   * The template's text for this conversation, with the generation prompt and the visual
   * placeholders not expanded. A BOS the template writes at the start is kept (the prompt builder
   * inserts BOS once, as the processor does).
   */
  render(visual: VisualCounts, conversation: Conversation): string;
}

type ContentItem = { type: 'image' } | { type: 'video' } | { type: 'text'; text: string };
export interface ChatMessage {
  role: 'user' | 'assistant';
  content: ContentItem[];
}

/**
 * The messages of a conversation as the Molmo2 processor's chat format has them: the images (or the
 * video) are content items of the first user message, before its text; earlier answers are
 * assistant messages.
 */
export function chatMessages(visual: VisualCounts, c: Conversation): ChatMessage[] {
  const visuals: ContentItem[] = [...Array.from({ length: visual.images }, () => ({ type: 'image' as const })), ...Array.from({ length: visual.videos }, () => ({ type: 'video' as const }))];
  const messages: ChatMessage[] = [];
  const user = (text: string): ChatMessage => ({ role: 'user', content: [...(messages.length === 0 ? visuals : []), { type: 'text', text }] });
  for (const turn of c.history ?? []) {
    messages.push(user(turn.question));
    messages.push({ role: 'assistant', content: [{ type: 'text', text: turn.answer }] });
  }
  messages.push(user(c.question));
  return messages;
}

/** Occurrences of `needle` in `text`. */
export function countOf(text: string, needle: string): number {
  let n = 0;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) n++;
  return n;
}

const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Conversations every usable template must render, with the placeholders each must give. */
const PROBES: { what: string; visual: VisualCounts; conversation: Conversation }[] = [
  { what: 'a text-only question', visual: { images: 0, videos: 0 }, conversation: { question: 'Describe the scene.' } },
  { what: 'a question about one image', visual: { images: 1, videos: 0 }, conversation: { question: 'Point to the boats.' } },
  { what: 'a question about three images', visual: { images: 3, videos: 0 }, conversation: { question: 'Which image shows a dog?' } },
  { what: 'a question about a video', visual: { images: 0, videos: 1 }, conversation: { question: 'Track the red car.' } },
  {
    what: 'a follow-up question about a video',
    visual: { images: 0, videos: 1 },
    conversation: { question: 'Point to them.', history: [{ question: 'How many cups are there?', answer: 'There are 3 cups.' }] },
  },
];

/**
 * Compiles a chat template and proves it on a probe conversation of each kind the app sends (text
 * only, one image, several images, a video, a follow-up): each must render to a string holding the
 * question text and exactly one placeholder per image / video. Throws ChatTemplateError otherwise.
 */
export function compileChatTemplate(source: string, name: string, tokens: ChatTemplateTokens = {}): ChatTemplate {
  if (typeof source !== 'string' || source.trim() === '') throw new ChatTemplateError(name, 'the template is empty');
  let parsed: Template;
  try {
    parsed = new Template(source);
  } catch (e) {
    throw new ChatTemplateError(name, `it cannot be parsed: ${reasonOf(e)}`);
  }
  const context: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tokens)) if (typeof v === 'string') context[k] = v;
  const template: ChatTemplate = {
    name,
    tokens: { ...tokens },
    render(visual, conversation) {
      let out: unknown;
      try {
        out = parsed.render({ ...context, messages: chatMessages(visual, conversation), add_generation_prompt: true });
      } catch (e) {
        throw new ChatTemplateError(name, `it fails to render: ${reasonOf(e)}`);
      }
      if (typeof out !== 'string') throw new ChatTemplateError(name, `it rendered ${typeof out}, not text`);
      return out;
    },
  };
  for (const probe of PROBES) {
    const text = template.render(probe.visual, probe.conversation);
    const problems: string[] = [];
    const images = countOf(text, IMAGE_PLACEHOLDER);
    const videos = countOf(text, VIDEO_PLACEHOLDER);
    if (images !== probe.visual.images) problems.push(`${images} ${IMAGE_PLACEHOLDER} placeholders instead of ${probe.visual.images}`);
    if (videos !== probe.visual.videos) problems.push(`${videos} ${VIDEO_PLACEHOLDER} placeholders instead of ${probe.visual.videos}`);
    for (const part of [probe.conversation.question, ...(probe.conversation.history ?? []).flatMap((t) => [t.question, t.answer])]) {
      if (!text.includes(part)) problems.push(`no ${JSON.stringify(part)}`);
    }
    if (problems.length) throw new ChatTemplateError(name, `rendering ${probe.what} gives ${problems.join(', ')}`);
  }
  return template;
}

/** A special token of tokenizer_config.json: a string or an AddedToken object `{ content }`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** The special tokens transformers gives a chat template, read from tokenizer_config.json. */
export function chatTemplateTokens(tokenizerConfig: Record<string, unknown> | undefined): ChatTemplateTokens {
  const out: ChatTemplateTokens = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const) {
    const text = tokenText(tokenizerConfig?.[key]);
    if (text !== undefined) out[key] = text;
  }
  return out;
}

export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

/**
 * The chat template of a model folder and where it is: `chat_template.jinja` when present (it wins,
 * as in transformers), else `chat_template` of tokenizer_config.json (a string, or a list of named
 * templates of which "default" is used). Undefined: the folder has none.
 */
export function findChatTemplate(
  jinjaFile: string | undefined,
  tokenizerConfig: Record<string, unknown> | undefined,
): { source: string; name: string } | undefined {
  if (jinjaFile !== undefined) return { source: jinjaFile, name: CHAT_TEMPLATE_FILE };
  const entry = tokenizerConfig?.chat_template;
  if (entry === undefined || entry === null) return undefined;
  const name = 'tokenizer_config.json chat_template';
  if (typeof entry === 'string') return { source: entry, name };
  if (Array.isArray(entry)) {
    const named = entry.find((t) => t && typeof t === 'object' && (t as { name?: unknown }).name === 'default') as { template?: unknown } | undefined;
    if (named && typeof named.template === 'string') return { source: named.template, name: `${name} "default"` };
    throw new ChatTemplateError(name, 'it lists named templates but none called "default"');
  }
  throw new ChatTemplateError(name, `it is ${typeof entry}, not text`);
}

/**
 * The compiled chat template of a model folder, from its `chat_template.jinja` text (undefined: no
 * such file) and its tokenizer_config.json (special tokens; `chat_template` when there is no file).
 * Undefined: the folder has no template. Throws ChatTemplateError when the template cannot be used.
 */
export function modelChatTemplate(jinjaFile: string | undefined, tokenizerConfig: Record<string, unknown> | undefined): ChatTemplate | undefined {
  const found = findChatTemplate(jinjaFile, tokenizerConfig);
  return found && compileChatTemplate(found.source, found.name, chatTemplateTokens(tokenizerConfig));
}
