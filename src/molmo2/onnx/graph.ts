// A small ONNX graph builder: typed helpers for nodes, inputs, outputs and initializers, written
// straight into onnx-proto messages (no tracing). Weights go to external-data chunks through an
// ExternalData writer as they are added, so a graph never holds all of its weights in memory.
// Platform-free: bytes leave through the caller's `write` callback.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { float16Bits } from './fp16.ts';

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

/** 1 GiB: the largest external-data chunk (and so the largest single weight tensor). */
export const MAX_CHUNK_BYTES = 1024 ** 3;

export type WriteFile = (relPath: string, bytes: Uint8Array) => Promise<void>;

/** File names of a written graph, relative to the model folder (cf. manifest GraphFiles). */
export interface WrittenGraph {
  model: string;
  externalData: string[];
}

const ATTR = { FLOAT: 1, INT: 2, STRING: 3, GRAPH: 5, FLOATS: 6, INTS: 7 } as const;
const EXTERNAL = 1;
/** Tensors start at multiples of this inside a chunk (lets loaders view them as typed arrays). */
const ALIGN = 64;

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

/** Where one external-data file's bytes go, in file order. */
export interface ChunkSink {
  write(bytes: Uint8Array): Promise<void>;
  /** Called once after the last write. */
  close(): Promise<void>;
  /** Gives the file up after a failure (default: close()). */
  abort?(): Promise<void>;
}

/** Opens a sink for one external-data file (`relPath` relative to the model folder). */
export type OpenChunk = (relPath: string) => Promise<ChunkSink>;

/** A sink that collects a file in memory and hands it to `write` when closed. */
function bufferedSink(relPath: string, write: WriteFile, maxBytes: number): ChunkSink {
  let buffer = new Uint8Array(0);
  let used = 0;
  return {
    async write(bytes) {
      const need = used + bytes.byteLength;
      if (need > buffer.byteLength) {
        // Grows geometrically, never past the chunk limit.
        const grown = new Uint8Array(Math.min(Math.max(maxBytes, need), Math.max(need, buffer.byteLength * 2, 1 << 16)));
        grown.set(buffer.subarray(0, used));
        buffer = grown;
      }
      buffer.set(bytes, used);
      used = need;
    },
    async close() {
      const bytes = buffer.subarray(0, used);
      buffer = new Uint8Array(0);
      await write(relPath, bytes);
    },
    async abort() {
      buffer = new Uint8Array(0);
    },
  };
}

/** One place reserved in an external-data file; its bytes arrive later, in any order. */
export interface WeightSlot {
  location: string;
  offset: number;
  length: number;
  /**
   * Stores `bytes` at `at` inside the tensor. Resolves once they are written to the file's sink (or
   * copied), after which the caller may reuse them; pieces must tile the tensor exactly.
   */
  put(at: number, bytes: Uint8Array): Promise<void>;
}

interface Piece {
  bytes: Uint8Array;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** One external-data file: bytes are handed to its sink strictly in file order. */
class Chunk {
  /** Bytes reserved (tensors and alignment padding). */
  end = 0;
  private cursor = 0;
  private readonly pending = new Map<number, Piece>();
  private pumping = false;
  private sealed = false;
  private error: unknown;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;
  /** Resolves when every reserved byte is written and the sink is closed. */
  readonly done = new Promise<void>((res, rej) => {
    this.resolveDone = res;
    this.rejectDone = rej;
  });

  constructor(
    readonly name: string,
    private readonly sink: ChunkSink,
  ) {
    this.done.catch(() => {}); // observed through ExternalData
  }

  put(offset: number, bytes: Uint8Array): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error);
    if (bytes.byteLength === 0) return Promise.resolve();
    if (offset < this.cursor || this.pending.has(offset)) return Promise.reject(new Error(`${this.name}: bytes at offset ${offset} were already stored`));
    return new Promise<void>((resolve, reject) => {
      this.pending.set(offset, { bytes, resolve, reject });
      void this.pump();
    });
  }

  seal(): void {
    this.sealed = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    let piece: Piece | undefined;
    try {
      for (;;) {
        piece = this.pending.get(this.cursor);
        if (!piece) break;
        this.pending.delete(this.cursor);
        if (this.cursor + piece.bytes.byteLength > this.end) throw new Error(`${this.name}: a piece at ${this.cursor} runs past the reserved ${this.end} bytes`);
        await this.sink.write(piece.bytes);
        this.cursor += piece.bytes.byteLength;
        piece.resolve();
        piece = undefined;
      }
      if (this.sealed && this.cursor === this.end && this.error === undefined) {
        this.sealed = false; // close once
        await this.sink.close();
        this.resolveDone();
      }
    } catch (e) {
      piece?.reject(e);
      this.fail(e);
    } finally {
      this.pumping = false;
    }
    // A piece may have arrived while the sink was closing.
    if (this.error === undefined && this.pending.has(this.cursor)) void this.pump();
  }

  fail(e: unknown): void {
    if (this.error !== undefined) return;
    this.error = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    (this.sink.abort ? this.sink.abort() : this.sink.close()).catch(() => {});
    this.rejectDone(e);
  }
}

/**
 * Writes tensors into `<stem>.onnx_data`, `<stem>.onnx_data_1`, … chunks of at most `maxChunkBytes`.
 * A tensor's place (file, file-local offset, 64-byte aligned) is fixed when it is reserved; its bytes
 * may arrive later and in any order, and go to the file's sink in file order. With `open`, sinks
 * stream to their destination (the converter writes and hashes files as bytes arrive); without it,
 * each chunk is collected in memory and passed to `write` once complete.
 */
export class ExternalData {
  readonly files: string[] = [];
  private readonly chunks: Chunk[] = [];
  private readonly tracked = new Set<Promise<void>>();
  private error: unknown;

  constructor(
    private readonly dir: string,
    private readonly stem: string,
    private readonly write: WriteFile,
    readonly maxChunkBytes = MAX_CHUNK_BYTES,
    private readonly open?: OpenChunk,
  ) {
    if (!(maxChunkBytes >= ALIGN)) throw new Error(`external-data chunks must hold at least ${ALIGN} bytes`);
  }

  private fileName(index: number): string {
    return index === 0 ? `${this.stem}.onnx_data` : `${this.stem}.onnx_data_${index}`;
  }

  private relPath(name: string): string {
    return this.dir ? `${this.dir}/${name}` : name;
  }

  private throwIfFailed(): void {
    if (this.error !== undefined) throw this.error;
  }

  /** Reserves the place of one tensor of `length` bytes; a full chunk is sealed and a new one opened. */
  async reserve(length: number): Promise<WeightSlot> {
    this.throwIfFailed();
    if (length > this.maxChunkBytes) throw new Error(`a ${length}-byte tensor does not fit in a ${this.maxChunkBytes}-byte external-data chunk; split it`);
    let chunk = this.chunks.at(-1);
    let offset = chunk ? Math.ceil(chunk.end / ALIGN) * ALIGN : 0;
    if (!chunk || offset + length > this.maxChunkBytes) {
      chunk?.seal();
      const name = this.fileName(this.files.length);
      this.files.push(name);
      const path = this.relPath(name);
      const sink = this.open ? await this.open(path) : bufferedSink(path, this.write, this.maxChunkBytes);
      chunk = new Chunk(name, sink);
      this.chunks.push(chunk);
      offset = 0;
    }
    const c = chunk;
    const padFrom = c.end;
    c.end = offset + length;
    if (offset > padFrom) this.track(c.put(padFrom, new Uint8Array(offset - padFrom))); // alignment padding
    return {
      location: c.name,
      offset,
      length,
      put: (at, bytes) => {
        if (at < 0 || at + bytes.byteLength > length) return Promise.reject(new Error(`${c.name}: ${bytes.byteLength} bytes at ${at} do not fit a ${length}-byte tensor`));
        return c.put(offset + at, bytes);
      },
    };
  }

  /** Appends one tensor given as consecutive byte pieces (copied); returns where it lives. */
  async add(pieces: Uint8Array[]): Promise<{ location: string; offset: number; length: number }> {
    const length = pieces.reduce((s, p) => s + p.byteLength, 0);
    const before = this.chunks.at(-1);
    const slot = await this.reserve(length);
    let at = 0;
    for (const p of pieces) {
      this.track(slot.put(at, p.slice()));
      at += p.byteLength;
    }
    // A chunk this tensor did not fit in leaves memory before the next one fills.
    if (before && before !== this.chunks.at(-1)) await this.settle(before);
    return { location: slot.location, offset: slot.offset, length: slot.length };
  }

  private async settle(chunk: Chunk): Promise<void> {
    await chunk.done.catch((e) => {
      this.fail(e);
      throw e;
    });
  }

  /** Watches work that stores bytes: its failure fails the whole file set. */
  track(p: Promise<unknown>): void {
    const t: Promise<void> = p.then(
      () => {
        this.tracked.delete(t);
      },
      (e: unknown) => {
        this.tracked.delete(t);
        this.fail(e);
      },
    );
    this.tracked.add(t);
  }

  /** Gives up: pending stores reject, sinks are closed without completing. */
  fail(e: unknown): void {
    if (this.error !== undefined) return;
    this.error = e;
    for (const c of this.chunks) c.fail(e);
  }

  /** Seals the open chunk and waits until every tracked store and every chunk is written. */
  async flush(): Promise<void> {
    this.chunks.at(-1)?.seal();
    while (this.tracked.size > 0) await Promise.all([...this.tracked]);
    this.throwIfFailed();
    for (const c of this.chunks) await this.settle(c);
    this.throwIfFailed();
  }

  /** Relative paths (from the model folder) of every chunk written. */
  paths(): string[] {
    return this.files.map((f) => this.relPath(f));
  }
}

export interface GraphOptions {
  /** ai.onnx opset (default 17). */
  opset?: number;
  /** Where weights go; without it, weights are stored inline (small test graphs, subgraphs). */
  external?: ExternalData;
}

/**
 * One ONNX graph under construction. Values are referred to by name (plain strings); helpers make
 * unique names so builders can compose freely.
 */
export class Graph {
  readonly nodes: INodeProto[] = [];
  readonly inputs: IValueInfoProto[] = [];
  readonly outputs: IValueInfoProto[] = [];
  readonly initializers: ITensorProto[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, string>();
  private readonly pending: Promise<unknown>[] = [];
  private counter = 0;
  readonly opset: number;
  readonly external?: ExternalData;

  constructor(
    readonly name: string,
    opts: GraphOptions = {},
  ) {
    this.opset = opts.opset ?? DEFAULT_OPSET;
    this.external = opts.external;
  }

  /** A fresh value name starting with `hint`. */
  fresh(hint: string): string {
    let name = hint;
    while (this.names.has(name)) name = `${hint}_${++this.counter}`;
    this.names.add(name);
    return name;
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
   * Adds a node. `outputs` is either a count (auto-named after the op) or explicit names. Empty
   * strings in `inputs` mark omitted optional inputs.
   */
  node(
    op: string,
    inputs: string[],
    o: { attrs?: Record<string, AttrValue>; domain?: string; outputs?: number | string[]; name?: string } = {},
  ): string[] {
    const outs =
      typeof o.outputs === 'object' ? o.outputs.map((n) => (n === '' ? '' : this.claim(n))) : Array.from({ length: o.outputs ?? 1 }, () => this.fresh(`${o.name ?? op}_out`));
    const attrs = Object.entries(o.attrs ?? {})
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => attribute(k, v));
    this.nodes.push({ opType: op, domain: o.domain ?? '', name: this.fresh(`${o.name ?? op}_node`), input: inputs, output: outs, attribute: attrs });
    return outs;
  }

  /** A single-output ai.onnx node. */
  op(op: string, inputs: string[], attrs?: Record<string, AttrValue>, name?: string): string {
    return this.node(op, inputs, { attrs, name })[0];
  }

  /** A single-output com.microsoft node. */
  ms(op: string, inputs: string[], attrs?: Record<string, AttrValue>, name?: string): string {
    return this.node(op, inputs, { attrs, domain: MS_DOMAIN, name })[0];
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

/**
 * Graph plus its external-data writer for a model file `<dir>/<stem>.onnx`; `finish()` flushes the
 * last chunk and writes the graph.
 */
export class ModelFile {
  readonly graph: Graph;
  readonly external: ExternalData;

  constructor(
    readonly dir: string,
    readonly stem: string,
    private readonly write: WriteFile,
    opts: { maxChunkBytes?: number; opset?: number; open?: OpenChunk } = {},
  ) {
    this.external = new ExternalData(dir, stem, write, opts.maxChunkBytes, opts.open);
    this.graph = new Graph(stem, { external: this.external, opset: opts.opset });
  }

  async finish(): Promise<WrittenGraph> {
    await this.external.flush();
    const model = this.dir ? `${this.dir}/${this.stem}.onnx` : `${this.stem}.onnx`;
    await this.write(model, this.graph.toModelBytes());
    return { model, externalData: this.external.paths() };
  }
}
