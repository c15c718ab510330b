// Weight encoding as jobs: the graph builders ask for a block of rows (or a rows × columns tile) of a
// checkpoint tensor, encoded as float16 / float32 bytes or as MatMulNBits int4 / int8, and write the result
// into their weight's place in the external data. A BlockEncoder runs the jobs: InlineEncoder here
// runs them in the calling thread from whole tensors (tests, in-memory weights); the converter
// supplies one that reads the bytes and encodes them on worker threads (tools/lib/encoder-pool.ts).
// Platform-free.
import { float16BitsOfFloat32Bits, float32ToFloat16Into } from '../fp16.ts';
import { quantizeQ4Into, quantizeQ8Into } from './quant.ts';

export type FloatType = 'float32' | 'float16';

/** What one job makes of its block. */
export type BlockEncoding =
  /** The rows as they are (row-major), in `type`. */
  | { kind: 'float'; type: FloatType }
  /** The tile transposed ([cols, rows] row-major), in `type`: torch Linear [N, K] → MatMul [K, N]. */
  | { kind: 'transpose'; type: FloatType }
  /** Each row (of length cols = K) as MatMulNBits int4: packed codes, scales, zero points if asymmetric. */
  | { kind: 'q4'; blockSize: number; symmetric: boolean; scaleType: FloatType }
  /** Each row as MatMulNBits int8 (symmetric): codes, scales. */
  | { kind: 'q8'; blockSize: number; scaleType: FloatType };

/** Rows [rowFrom, rowTo) × columns [colFrom, colTo) of a stored tensor viewed as [rows, cols]. */
export interface BlockRequest {
  tensor: string;
  cols: number;
  rowFrom: number;
  rowTo: number;
  colFrom: number;
  colTo: number;
  encoding: BlockEncoding;
}

/** An encoded block; `release()` hands its memory back once the bytes are stored. */
export interface EncodedBlock {
  /** In the order of blockOutputSizes(). */
  outputs: Uint8Array[];
  release(): void;
}

/**
 * Runs encoding jobs. `submit` resolves once the job is accepted (an encoder with bounded memory
 * makes callers wait here); `done` then resolves with the block, in whatever order jobs finish.
 */
export interface BlockEncoder {
  submit(req: BlockRequest): Promise<{ done: Promise<EncodedBlock> }>;
}

/** A weight matrix the builders encode: rows [rowFrom, rowFrom + rows) of a tensor stored as [*, cols]. */
export interface WeightRef {
  encoder: BlockEncoder;
  tensor: string;
  rowFrom: number;
  rows: number;
  cols: number;
}

const floatBytes = (t: FloatType) => (t === 'float16' ? 2 : 4);

/** Byte sizes of a job's outputs. */
export function blockOutputSizes(req: BlockRequest): number[] {
  const rows = req.rowTo - req.rowFrom;
  const cols = req.colTo - req.colFrom;
  const e = req.encoding;
  if (e.kind === 'float' || e.kind === 'transpose') return [rows * cols * floatBytes(e.type)];
  const nb = Math.ceil(cols / e.blockSize);
  if (e.kind === 'q8') return [rows * nb * e.blockSize, rows * nb * floatBytes(e.scaleType)];
  const sizes = [rows * nb * (e.blockSize / 2), rows * nb * floatBytes(e.scaleType)];
  if (!e.symmetric) sizes.push(rows * Math.ceil(nb / 2));
  return sizes;
}

/** Checks a request against its tensor's shape; returns the number of values it covers. */
export function checkBlockRequest(req: BlockRequest, rows: number): number {
  const { rowFrom, rowTo, colFrom, colTo, cols, encoding } = req;
  const ok = Number.isInteger(rowFrom) && Number.isInteger(rowTo) && 0 <= rowFrom && rowFrom < rowTo && rowTo <= rows && 0 <= colFrom && colFrom < colTo && colTo <= cols;
  if (!ok) throw new Error(`${req.tensor}: block rows [${rowFrom}, ${rowTo}) × cols [${colFrom}, ${colTo}) is outside [${rows}, ${cols}]`);
  if (encoding.kind !== 'transpose' && (colFrom !== 0 || colTo !== cols)) throw new Error(`${req.tensor}: ${encoding.kind} blocks take whole rows`);
  return (rowTo - rowFrom) * (colTo - colFrom);
}

function view<T extends Float32Array | Uint16Array>(C: { new (b: ArrayBufferLike, o: number, n: number): T; BYTES_PER_ELEMENT: number }, bytes: Uint8Array): T {
  if (bytes.byteOffset % C.BYTES_PER_ELEMENT !== 0) throw new Error('encodeBlock: misaligned output buffer');
  return new C(bytes.buffer, bytes.byteOffset, bytes.byteLength / C.BYTES_PER_ELEMENT);
}

/**
 * Encodes one block. `values` holds the block's values as float32, row-major [rows, colTo − colFrom];
 * `outputs` are buffers of blockOutputSizes(req) bytes (2- or 4-byte aligned as their type needs).
 */
export function encodeBlock(values: Float32Array, req: BlockRequest, outputs: Uint8Array[]): void {
  const rows = req.rowTo - req.rowFrom;
  const cols = req.colTo - req.colFrom;
  if (values.length !== rows * cols) throw new Error(`encodeBlock: ${values.length} values for a ${rows}×${cols} block`);
  const e = req.encoding;
  if (e.kind === 'float') {
    if (e.type === 'float16') float32ToFloat16Into(values, view(Uint16Array, outputs[0]));
    else view(Float32Array, outputs[0]).set(values);
  } else if (e.kind === 'transpose') {
    if (e.type === 'float16') transposeToFloat16(values, rows, cols, view(Uint16Array, outputs[0]));
    else transposeFloat32(values, rows, cols, view(Float32Array, outputs[0]));
  } else if (e.kind === 'q8') {
    const scales = e.scaleType === 'float16' ? view(Uint16Array, outputs[1]) : view(Float32Array, outputs[1]);
    quantizeQ8Into(values, rows, cols, e, outputs[0], scales);
  } else {
    const scales = e.scaleType === 'float16' ? view(Uint16Array, outputs[1]) : view(Float32Array, outputs[1]);
    quantizeQ4Into(values, rows, cols, e, outputs[0], scales, e.symmetric ? undefined : outputs[2]);
  }
}

/** Rows per tile of the transposes: a tile's source rows stay in cache while its columns are written. */
const TILE = 64;

function transposeFloat32(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c = 0; c < cols; c++) {
      for (let r = r0, at = c * rows + r0; r < r1; r++, at++) dst[at] = src[r * cols + c];
    }
  }
}

function transposeToFloat16(src: Float32Array, rows: number, cols: number, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c = 0; c < cols; c++) {
      for (let r = r0, at = c * rows + r0; r < r1; r++, at++) dst[at] = float16BitsOfFloat32Bits(bits[r * cols + c]);
    }
  }
}

/**
 * Runs jobs in the calling thread. Row blocks are read through `readRows` when given (only the
 * block's rows are in memory); otherwise, and for tiles, from the whole tensor read through `read`
 * (the last one is kept, as the builders ask for one tensor's blocks in a row).
 */
export class InlineEncoder implements BlockEncoder {
  private last?: { tensor: string; data: Promise<Float32Array> };
  private accepted = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly read: (tensor: string) => Promise<Float32Array>,
    private readonly readRows?: (tensor: string, from: number, to: number) => Promise<Float32Array>,
    /** Blocks not yet released at once (bounds the memory of blocks waiting to be written). */
    private readonly maxAccepted = 8,
  ) {}

  async submit(req: BlockRequest): Promise<{ done: Promise<EncodedBlock> }> {
    while (this.accepted >= this.maxAccepted) await new Promise<void>((r) => this.waiting.push(r));
    this.accepted++;
    const wholeRows = req.colFrom === 0 && req.colTo === req.cols;
    let values: Promise<Float32Array>;
    if (wholeRows && this.readRows) {
      values = this.readRows(req.tensor, req.rowFrom, req.rowTo);
    } else {
      if (this.last?.tensor !== req.tensor) this.last = { tensor: req.tensor, data: this.read(req.tensor) };
      values = this.last.data.then((all) => blockValues(all, req));
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.accepted--;
      this.waiting.shift()?.();
    };
    const done = values.then(
      (v) => {
        try {
          const outputs = blockOutputSizes(req).map((n) => new Uint8Array(n));
          encodeBlock(v, req, outputs);
          return { outputs, release };
        } catch (e) {
          release();
          throw e;
        }
      },
      (e) => {
        release();
        throw e;
      },
    );
    done.catch(() => {}); // the caller's handler reports it
    return { done };
  }
}

/** The block's values from a whole tensor [*, cols] (a view for whole rows, a copy for a tile). */
export function blockValues(all: Float32Array, req: BlockRequest): Float32Array {
  checkBlockRequest(req, all.length / req.cols);
  const { rowFrom, rowTo, colFrom, colTo, cols } = req;
  if (colFrom === 0 && colTo === cols) return all.subarray(rowFrom * cols, rowTo * cols);
  const width = colTo - colFrom;
  const out = new Float32Array((rowTo - rowFrom) * width);
  for (let r = rowFrom; r < rowTo; r++) out.set(all.subarray(r * cols + colFrom, r * cols + colTo), (r - rowFrom) * width);
  return out;
}

/** A WeightRef over values in memory ([rows, cols] row-major). */
export function arrayRef(values: Float32Array, rows: number, cols: number): WeightRef {
  if (values.length !== rows * cols) throw new Error(`arrayRef: ${values.length} values do not form [${rows}, ${cols}]`);
  return { encoder: new InlineEncoder(async () => values), tensor: '(array)', rowFrom: 0, rows, cols };
}
