// The nodes onnxruntime places on the CPU, read from its log while a session is made, and the check
// that the model's compute runs on the GPU. onnxruntime keeps small shape and index computations
// (Shape, Range, CumSum over token types, …) on the CPU on purpose; the weight-bearing and per-token
// work must never land there.

export interface PlacedNode {
  op: string;
  name: string;
}

export interface GraphPlacement {
  /** The graph's file, as the manifest names it. */
  graph: string;
  cpuNodes: PlacedNode[];
}

// Logged at info level during partitioning: nodes the WebGPU EP has no kernel for, and nodes onnxruntime
// prefers to keep on the CPU (small shape computations).
const NO_KERNEL = /webgpu kernel not found in registries for Op type: (\S+) node name: (.*?)\s*$/;
const CPU_PREFERRED = /Candidate for fallback CPU execution: (.*?)\s*$/;

/** The CPU-placed nodes named in a session's log (partitioning may run more than once: each node once). */
export function cpuNodesOf(lines: readonly string[]): PlacedNode[] {
  const nodes = new Map<string, string>();
  for (const line of lines) {
    const m = NO_KERNEL.exec(line);
    if (m) nodes.set(m[2], m[1]);
  }
  for (const line of lines) {
    const m = CPU_PREFERRED.exec(line);
    // The op of a node named only here is its name's last part ("…/Where_1" → Where).
    if (m && !nodes.has(m[1])) nodes.set(m[1], /([A-Za-z]+)(_\d+)?$/.exec(m[1])?.[1] ?? '?');
  }
  return [...nodes].map(([name, op]) => ({ op, name }));
}

/** Ops that carry weights or per-token compute: slow and memory-hungry on the CPU. */
const COMPUTE_OPS = new Set([
  'MatMulNBits',
  'MatMul',
  'Gemm',
  'Conv',
  'GroupQueryAttention',
  'MultiHeadAttention',
  'Attention',
  'Softmax',
  'GatherBlockQuantized',
  'SimplifiedLayerNormalization',
  'SkipSimplifiedLayerNormalization',
  'LayerNormalization',
  'RotaryEmbedding',
  'Gelu',
  'FastGelu',
  'QuickGelu',
]);

/** CPU-placed nodes that should run on the GPU: compute ops, the embedding lookup and the LM head. */
export function misplacedNodes(p: GraphPlacement): PlacedNode[] {
  return p.cpuNodes.filter((n) => COMPUTE_OPS.has(n.op) || /embed_tokens\/Gather\w*$|lm_head/.test(n.name));
}

/** One line for the stats panel: what runs on the CPU, by op. */
export function placementSummary(p: GraphPlacement): string {
  if (p.cpuNodes.length === 0) return 'every node on the GPU';
  const ops = new Map<string, number>();
  for (const n of p.cpuNodes) ops.set(n.op, (ops.get(n.op) ?? 0) + 1);
  const list = [...ops].map(([op, n]) => (n > 1 ? `${op} ×${n}` : op)).join(', ');
  return `${p.cpuNodes.length} node${p.cpuNodes.length === 1 ? '' : 's'} on the CPU (${list}), the rest on the GPU`;
}
