import { describe, expect, it } from 'vitest';
import { cpuNodesOf, misplacedNodes } from './placement.ts';

// onnxruntime-web 1.30's info-level partitioning lines, as its wasm build prints them (trimmed);
// partitioning runs more than once, so a node may be named twice.
const at = (where: string, text: string) => `2026-12-06 07:59:24.808599 [I:onnxruntime:, ${where}] ${text}`;
const noKernel = (op: string, name: string) => at('webgpu_execution_provider.cc:665 GetCapability', `webgpu kernel not found in registries for Op type: ${op} node name: ${name}`);
const LOG = [
  at('graph_transformer.cc:15 Apply', 'GraphTransformer EnsureUniqueDQForNodeUnit modified: 0 with status: OK'),
  noKernel('Equal', '/model/embed_tokens/image_features/Equal'),
  noKernel('Range', '/model/positions/Range'),
  at('fallback_cpu_capability.cc:89 operator()', 'Candidate for fallback CPU execution: /model/embed_tokens/image_features/Equal'),
  at('fallback_cpu_capability.cc:89 operator()', 'Candidate for fallback CPU execution: /model/positions/Where_1'),
  noKernel('Equal', '/model/embed_tokens/image_features/Equal'),
  noKernel('MatMulNBits', '/model/layers.0/attn/qkv/MatMulNBits'),
];

describe('node placement', () => {
  it('is read from the partitioning log: each CPU node once, with its op', () => {
    expect(cpuNodesOf(LOG)).toEqual([
      { op: 'Equal', name: '/model/embed_tokens/image_features/Equal' },
      { op: 'Range', name: '/model/positions/Range' },
      { op: 'MatMulNBits', name: '/model/layers.0/attn/qkv/MatMulNBits' },
      { op: 'Where', name: '/model/positions/Where_1' },
    ]);
    expect(cpuNodesOf(LOG.slice(0, 1))).toEqual([]);
  });

  it('flags compute, the embedding lookup and the LM head on the CPU, not index computations', () => {
    const p = { graph: 'decoder.onnx', cpuNodes: cpuNodesOf(LOG) };
    expect(misplacedNodes(p).map((n) => n.op)).toEqual(['MatMulNBits']);
    const more = { ...p, cpuNodes: [...p.cpuNodes, { op: 'Gather', name: '/model/embed_tokens/Gather' }, { op: 'Cast', name: '/lm_head/Cast' }] };
    expect(misplacedNodes(more).map((n) => n.name)).toEqual(['/model/layers.0/attn/qkv/MatMulNBits', '/model/embed_tokens/Gather', '/lm_head/Cast']);
  });
});
