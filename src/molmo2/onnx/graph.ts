// A small ONNX graph builder: typed helpers for nodes, inputs, outputs and initializers, written
// straight into onnx-proto messages (no tracing). Node names are hierarchical, as onnxruntime-genai
// writes them (`/model/layers.3/attn/qkv/MatMulNBits`), so a profile names each kernel's layer.
// Weights go to an ExternalData writer as they are added, so a graph never holds all of them in memory.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import type { ExternalData, WeightSlot } from './external-data.ts';
import { float16Bits } from '../fp16.ts';

// onnx-proto is CommonJS: take the namespace from its default export.
export const { onnx } = onnxProto;
type ITensorProto = OnnxTypes.ITensorProto;
type INodeProto = OnnxTypes.INodeProto;
type IValueInfoProto = OnnxTypes.IValueInfoProto;
type IAttributeProto = OnnxTypes.IAttributeProto;

export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'uint8' | 'bool';

/** ONNX TensorProto.DataType codes. */
export const ONNX_TYPE: Record<TensorType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10 };
export const BYTES_PER_ELEMENT: Record<TensorType, number> = { float32: 4, uint8: 1, int32: 4, int64: 8, bool: 1, float16: 2 };

/** A dimension: a fixed size or a symbolic name. */
export type Dim = number | string;

/** Attribute values: integers, integer lists, strings, or tagged floats / float lists / subgraphs. */
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { graph: Graph };
export const float = (v: number): { float: number } => ({ float: v });

export const MS_DOMAIN = 'com.microsoft';
export const DEFAULT_OPSET = 17;

const ATTR = { FLOAT: 1, INT: 2, STRING: 3, GRAPH: 5, FLOATS: 6, INTS: 7 } as const;
const EXTERNAL = 1;

function attribute(name: string, v: AttrValue): IAttributeProto {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer; wrap floats with float()`);
    return { name, type: ATTR.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: ATTR.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: ATTR.INTS, ints: v };
  if ('float' in v) return { name, type: ATTR.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: ATTR.FLOATS, floats: v.floats };
  return { name, type: ATTR.GRAPH, g: v.graph.toGraphProto() };
}

/** Renames a value in nodes and, for outer-scope references, in their subgraphs. */
function renameValue(nodes: INodeProto[], from: string, to: string): void {
  for (const n of nodes) {
    n.input = n.input?.map((i) => (i === from ? to : i));
    n.output = n.output?.map((o) => (o === from ? to : o));
    for (const a of n.attribute ?? []) if (a.g?.node) renameValue(a.g.node, from, to);
  }
}

function valueInfo(name: string, type: TensorType, dims: Dim[]): IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: ONNX_TYPE[type], shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Little-endian bytes of int64 values (inline constants). */
function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new BigInt64Array(values.length);
  values.forEach((v, i) => {
    if (!Number.isSafeInteger(v)) throw new Error(`int64 constant ${v} is not a safe integer`);
    out[i] = BigInt(v);
  });
  return bytesOf(out);
}

export interface GraphOptions {
  /** ai.onnx opset (default 17). */
  opset?: number;
  /** Where weights go; without it, weights are stored inline (small test graphs, subgraphs). */
  external?: ExternalData;
  /** Scope of the node names at the start (a subgraph continues its outer graph's scope). */
  scope?: string;
}

/**
 * One ONNX graph under construction. Values are referred to by name (plain strings); helpers make
 * unique names so builders can compose freely. Nodes are named `<scope>/<op>` (`_1`, `_2`, … when
 * repeated) and their outputs `<node>/output_<k>`; `scope()` sets the path while a block is built.
 */
export class Graph {
  readonly nodes: INodeProto[] = [];
  readonly inputs: IValueInfoProto[] = [];
  readonly outputs: IValueInfoProto[] = [];
  readonly initializers: ITensorProto[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, string>();
  private readonly pending: Promise<unknown>[] = [];
  /** Last suffix used per name hint. */
  private readonly counters = new Map<string, number>();
  private path: string;
  readonly opset: number;
  readonly external?: ExternalData;

  constructor(
    readonly name: string,
    opts: GraphOptions = {},
  ) {
    this.opset = opts.opset ?? DEFAULT_OPSET;
    this.external = opts.external;
    this.path = opts.scope ?? '';
  }

  /** A fresh name starting with `hint`. */
  fresh(hint: string): string {
    let name = hint;
    let n = this.counters.get(hint) ?? 0;
    while (this.names.has(name)) name = `${hint}_${++n}`;
    this.counters.set(hint, n);
    this.names.add(name);
    return name;
  }

  /** Every name taken in this graph, reserved ones included (values, nodes, initializers). */
  takenNames(): Iterable<string> {
    return this.names;
  }

  /** Takes `names` without using them: a subgraph and its outer graph share one namespace. */
  reserve(names: Iterable<string>): void {
    for (const n of names) this.names.add(n);
  }

  /** The current scope of node names, e.g. `/model/layers.3/attn` ('' at the top). */
  get scopePath(): string {
    return this.path;
  }

  /**
   * Runs `build` with node names under `path`: `/model/norm` from the top, or `attn/qkv` below the
   * current scope. Graph building is sequential, so an async `build` keeps the scope until it settles.
   */
  scope<T>(path: string, build: () => T): T {
    const outer = this.path;
    this.path = path.startsWith('/') ? path : `${outer}/${path}`;
    let result: T;
    try {
      result = build();
    } catch (e) {
      this.path = outer;
      throw e;
    }
    if (!(result instanceof Promise)) {
      this.path = outer;
      return result;
    }
    return result.finally(() => {
      this.path = outer;
    }) as T;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: value name "${name}" is already used`);
    this.names.add(name);
    return name;
  }

  input(name: string, type: TensorType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), type, dims));
    return name;
  }

  /**
   * Declares `value` as a graph output named `name`. A node's output is renamed in place; graph
   * inputs, initializers and values that already are outputs go through an Identity.
   */
  output(value: string, type: TensorType, dims: Dim[], name = value): string {
    if (value !== name) {
      const producer = this.nodes.find((n) => n.output?.includes(value));
      const isOutput = this.outputs.some((o) => o.name === value);
      if (producer && !isOutput) {
        this.claim(name);
        renameValue(this.nodes, value, name);
      } else {
        this.node('Identity', [value], { outputs: [name] });
      }
    }
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /**
   * Adds a node named `<scope>/<op>`. `outputs` is either a count (named after the node) or explicit
   * names. Empty strings in `inputs` mark omitted optional inputs.
   */
  node(op: string, inputs: string[], o: { attrs?: Record<string, AttrValue>; domain?: string; outputs?: number | string[] } = {}): string[] {
    const name = this.fresh(`${this.path}/${op}`);
    const outs = typeof o.outputs === 'object' ? o.outputs.map((n) => (n === '' ? '' : this.claim(n))) : Array.from({ length: o.outputs ?? 1 }, (_, k) => this.fresh(`${name}/output_${k}`));
    const attrs = Object.entries(o.attrs ?? {})
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => attribute(k, v));
    this.nodes.push({ opType: op, domain: o.domain ?? '', name, input: inputs, output: outs, attribute: attrs });
    return outs;
  }

  /** A single-output ai.onnx node. */
  op(op: string, inputs: string[], attrs?: Record<string, AttrValue>): string {
    return this.node(op, inputs, { attrs })[0];
  }

  /** A single-output com.microsoft node. */
  ms(op: string, inputs: string[], attrs?: Record<string, AttrValue>): string {
    return this.node(op, inputs, { attrs, domain: MS_DOMAIN })[0];
  }

  /** An inline constant (shapes, axes, scalars); identical constants are shared. */
  constant(type: TensorType, dims: number[], data: ArrayBufferView | readonly number[], hint = 'const'): string {
    const bytes = Array.isArray(data)
      ? type === 'int64'
        ? int64Bytes(data)
        : type === 'float32'
          ? bytesOf(Float32Array.from(data))
          : type === 'int32'
            ? bytesOf(Int32Array.from(data))
            : Uint8Array.from(data)
      : bytesOf(data as ArrayBufferView);
    const count = dims.reduce((a, b) => a * b, 1);
    if (bytes.byteLength !== count * BYTES_PER_ELEMENT[type]) throw new Error(`constant ${hint}: ${bytes.byteLength} bytes for ${type}[${dims.join(', ')}]`);
    const key = bytes.byteLength <= 256 ? `${type}|${dims.join(',')}|${Array.from(bytes).join(',')}` : '';
    const known = key && this.constants.get(key);
    if (known) return known;
    const name = this.fresh(hint);
    this.initializers.push({ name, dataType: ONNX_TYPE[type], dims, rawData: bytes.slice() });
    if (key) this.constants.set(key, name);
    return name;
  }

  int64(values: readonly number[], hint = 'i64'): string {
    return this.constant('int64', [values.length], values, hint);
  }

  scalarInt64(v: number, hint = 'i64'): string {
    return this.constant('int64', [], [v], hint);
  }

  scalar(type: 'float32' | 'float16', v: number, hint = 'scalar'): string {
    if (type === 'float32') return this.constant('float32', [], [v], hint);
    return this.constant('float16', [], bytesOf(Uint16Array.of(float16Bits(v))), hint);
  }

  /**
   * A weight initializer given as byte pieces (concatenated in order). With an ExternalData writer
   * it is appended to the open chunk right away; otherwise it is stored inline.
   */
  async weight(name: string, type: TensorType, dims: number[], pieces: ArrayBufferView | ArrayBufferView[]): Promise<string> {
    const parts = (Array.isArray(pieces) ? pieces : [pieces]).map(bytesOf);
    const length = parts.reduce((s, p) => s + p.byteLength, 0);
    const count = dims.reduce((a, b) => a * b, 1);
    const expected = type === 'uint8' || type === 'bool' ? count : count * BYTES_PER_ELEMENT[type];
    if (length !== expected) throw new Error(`weight ${name}: ${length} bytes for ${type}[${dims.join(', ')}]`);
    const n = this.claim(name);
    if (!this.external) {
      const raw = new Uint8Array(length);
      let at = 0;
      for (const p of parts) {
        raw.set(p, at);
        at += p.byteLength;
      }
      this.initializers.push({ name: n, dataType: ONNX_TYPE[type], dims, rawData: raw });
      return n;
    }
    this.pushExternal(n, type, dims, await this.external.add(parts));
    return n;
  }

  /** An initializer whose bytes lie at `where` in the external data file. */
  private pushExternal(name: string, type: TensorType, dims: number[], where: { location: string; offset: number; length: number }): void {
    this.initializers.push({
      name,
      dataType: ONNX_TYPE[type],
      dims,
      dataLocation: EXTERNAL,
      externalData: [
        { key: 'location', value: where.location },
        { key: 'offset', value: String(where.offset) },
        { key: 'length', value: String(where.length) },
      ],
    });
  }

  /**
   * A weight initializer whose bytes are stored later through the returned slot (by encoding jobs,
   * in any order). Its place in the external data is fixed now, so the graph stays in build order.
   */
  async weightSlot(name: string, type: TensorType, dims: number[]): Promise<WeightSlot & { name: string }> {
    const count = dims.reduce((a, b) => a * b, 1);
    const length = type === 'uint8' || type === 'bool' ? count : count * BYTES_PER_ELEMENT[type];
    const n = this.claim(name);
    if (!this.external) {
      const raw = new Uint8Array(length);
      this.initializers.push({ name: n, dataType: ONNX_TYPE[type], dims, rawData: raw });
      return {
        name: n,
        location: '',
        offset: 0,
        length,
        put: async (at, bytes) => {
          if (at < 0 || at + bytes.byteLength > length) throw new Error(`weight ${n}: ${bytes.byteLength} bytes at ${at} do not fit ${length}`);
          raw.set(bytes, at);
        },
        stored: () => false,
      };
    }
    const slot = await this.external.reserve(length);
    this.pushExternal(n, type, dims, slot);
    return { ...slot, name: n };
  }

  /**
   * Watches work that fills weight slots. With external data it runs on while the graph is built
   * (ModelFile.finish waits for it); inline weights must be complete before the graph is
   * serialized, so `settle()` waits for them.
   */
  track(p: Promise<unknown>): void {
    if (this.external) this.external.track(p);
    else this.pending.push(p);
  }

  async settle(): Promise<void> {
    const pending = this.pending.splice(0);
    await Promise.all(pending);
  }

  /** Largest tensor (bytes) one weight may have. */
  maxWeightBytes(): number {
    return this.external?.maxChunkBytes ?? Number.MAX_SAFE_INTEGER;
  }

  toGraphProto(): OnnxTypes.IGraphProto {
    return { name: this.name, node: this.nodes, input: this.inputs, output: this.outputs, initializer: this.initializers };
  }

  /** The serialized ModelProto (ai.onnx at `opset`, com.microsoft 1). */
  toModelBytes(producer = 'molmo2-web'): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: producer,
      opsetImport: [
        { domain: '', version: this.opset },
        { domain: MS_DOMAIN, version: 1 },
      ],
      graph: this.toGraphProto(),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

