// The small files of a converted model folder — configs, tokenizer, chat template — read into what
// answering needs. Shared by the browser's loader (model-loader.ts) and the batch tool's local backend.
import { CHAT_TEMPLATE_FILE, ChatTemplateError, modelChatTemplate, type ChatTemplate } from '../molmo2/chat-template.ts';
import { parseMolmo2Config, parseProcessorSettings, type Molmo2Config, type ProcessorSettings } from '../molmo2/config.ts';
import { Molmo2Tokenizer } from '../molmo2/tokenizer.ts';
import { WorkerError } from '../../workers/worker-error.ts';

/** The files besides the graphs that a model folder is read for (those present of them). */
export const MODEL_TEXT_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', CHAT_TEMPLATE_FILE, 'preprocessor_config.json', 'processor_config.json', 'video_preprocessor_config.json'];

export interface ModelTexts {
  config: Molmo2Config;
  settings: ProcessorSettings;
  tokenizer: Molmo2Tokenizer;
  chatTemplate: ChatTemplate;
}

/** Config, processor settings, tokenizer and chat template of model `name` from its files' text (path → text); a missing or unusable one is a 'model-file' error. */
export function readModelTexts(name: string, files: Map<string, string>): ModelTexts {
  const configJson = jsonOf(files, 'config.json');
  if (!configJson) throw new WorkerError('model-file', `${name} has no config.json`);
  const check = parseMolmo2Config(configJson, jsonOf(files, 'generation_config.json'));
  if (!check.config) throw new WorkerError('model-file', `${name}: config.json cannot be used: ${[...check.missing.map((m) => `missing ${m}`), ...check.errors].join('; ')}`);
  // The app has no graphs for MolmoPoint's point head (only the fp32 reference runs it).
  if (check.config.point) throw new WorkerError('model-file', `${name}: MolmoPoint models cannot run in the app yet`);
  const settings = parseProcessorSettings({
    preprocessor: jsonOf(files, 'preprocessor_config.json'),
    processor: jsonOf(files, 'processor_config.json'),
    video: jsonOf(files, 'video_preprocessor_config.json'),
  });
  const tokenizerJson = jsonOf(files, 'tokenizer.json');
  if (!tokenizerJson) throw new WorkerError('model-file', `${name} has no tokenizer.json`);
  const tokenizerConfig = jsonOf(files, 'tokenizer_config.json');
  const tokenizer = new Molmo2Tokenizer(tokenizerJson, tokenizerConfig ?? {});
  return { config: check.config, settings, tokenizer, chatTemplate: loadChatTemplate(name, files, tokenizerConfig) };
}

function jsonOf(files: Map<string, string>, path: string): Record<string, unknown> | undefined {
  const text = files.get(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new WorkerError('model-file', `${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * The folder's chat template (chat_template.jinja, else tokenizer_config.json's chat_template), compiled
 * once and proved on probe conversations; a folder without one, or with one that does not parse or
 * render, is refused.
 */
function loadChatTemplate(name: string, files: Map<string, string>, tokenizerConfig: Record<string, unknown> | undefined): ChatTemplate {
  let template: ChatTemplate | undefined;
  try {
    template = modelChatTemplate(files.get(CHAT_TEMPLATE_FILE), tokenizerConfig);
  } catch (e) {
    if (e instanceof ChatTemplateError) throw new WorkerError('model-file', `${name}: its chat template cannot be used: ${e.message}`);
    throw e;
  }
  if (!template) {
    throw new WorkerError('model-file', `${name} has no chat template (no ${CHAT_TEMPLATE_FILE}, and no chat_template in tokenizer_config.json); convert the model again`);
  }
  return template;
}
