// What the stats panel shows and "copy diagnostics" copies: the device, the loaded model and the
// last question's stage timings. Plain data, no pixels, no file names.
import type { Capabilities, LoadedModel, StageTimings } from '../../../workers/inference-api.ts';
import { placementSummary } from '../../runtime/placement.ts';

export interface StatRow {
  name: string;
  value: string;
}

const ms = (v: number) => `${Math.round(v)} ms`;
/** "onnx/webgpu/decoder_q4.onnx" → "decoder". */
const graphName = (path: string) => /(vision|decoder)[^/]*$/.exec(path)?.[1] ?? path;

export function statRows(caps: Capabilities | undefined, model: LoadedModel | undefined, t: StageTimings | undefined): StatRow[] {
  const rows: StatRow[] = [];
  if (caps) {
    const a = caps.adapter;
    rows.push({ name: 'adapter', value: a ? `${a.vendor} ${a.architecture}${a.description ? ` (${a.description})` : ''}${a.isFallbackAdapter ? ', software' : ''}` : 'none' });
    rows.push({ name: 'shader-f16', value: caps.shaderF16 ? 'yes' : 'no' });
  }
  if (model) {
    rows.push({ name: 'model', value: `${model.name} · ${model.dtype} · ${model.kvCache} KV cache · ${model.maxContext} tokens` });
    if (model.memoryPlan) rows.push({ name: 'context', value: model.memoryPlan.text });
    for (const p of model.placement ?? []) rows.push({ name: `${graphName(p.graph)} placement`, value: placementSummary(p) });
    if (model.ortBuild) rows.push({ name: 'onnxruntime', value: model.ortBuild === 'jspi' ? 'JSPI build (weights streamed per tensor)' : 'asyncify build' });
    rows.push({ name: 'load', value: `${ms(model.timings.totalMs)} (download ${ms(model.timings.downloadMs)}, GPU ${ms(model.timings.prepareMs)}, warm-up ${ms(model.timings.warmUpMs)}) from ${model.from}` });
  }
  if (t) {
    const items = t.visualItems ?? 0;
    const encoded = t.visionEncoded ?? items;
    rows.push({ name: 'vision', value: encoded > 0 ? `${ms(t.visionMs)} · ${ms(t.visionMs / encoded)} per frame (${encoded} encoded)` : `${ms(t.visionMs)}` });
    rows.push({ name: 'preprocessing', value: `${ms(t.preprocessMs)} on the ${t.preprocess === 'gpu' ? 'GPU' : t.preprocess === 'mixed' ? 'GPU and CPU' : 'CPU'}` });
    rows.push({ name: 'vision cache', value: `${t.visionCacheHits ?? 0} of ${items} frames reused` });
    rows.push({ name: 'prefill', value: `${t.prefillTokens ?? t.promptTokens} tokens in ${ms(t.prefillMs)} · ${t.prefillTokensPerSecond.toFixed(1)} tok/s` });
    rows.push({ name: 'prefix reuse', value: `${t.prefixReusedTokens ?? 0} of ${t.promptTokens} prompt tokens` });
    if (t.timeToFirstTokenMs !== undefined) rows.push({ name: 'first token', value: ms(t.timeToFirstTokenMs) });
    rows.push({ name: 'decode', value: `${t.generatedTokens} tokens · ${t.decodeTokensPerSecond.toFixed(2)} tok/s` });
  }
  return rows;
}

export function diagnosticsText(rows: StatRow[], userAgent: string): string {
  return [`Molmo2 Web diagnostics`, `browser: ${userAgent}`, ...rows.map((r) => `${r.name}: ${r.value}`)].join('\n');
}
