// External data of a model file: tensors placed in `<stem>.onnx_data`, `<stem>.onnx_data_1`, …
// chunks of at most 1 GiB, each written to its sink in file order as the bytes arrive (in any order).
// Platform-free: files leave through the caller's `write` callback or `openChunk` sinks.

/** 1 GiB: the largest external-data chunk (and so the largest single weight tensor). */
export const MAX_CHUNK_BYTES = 1024 ** 3;

export type WriteFile = (relPath: string, bytes: Uint8Array) => Promise<void>;

/** Tensors start at multiples of this inside a chunk (lets loaders view them as typed arrays). */
const ALIGN = 64;

/** Where one external-data file's bytes go, in file order. */
export interface ChunkSink {
  /**
   * Bytes of this file already written by an earlier, interrupted run of the same conversion: the
   * pieces that fall inside them are not written again (and builders skip the work that makes them).
   */
  readonly stored?: number;
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
  /** True when bytes [at, at + length) of the tensor are already in the file (a resumed conversion). */
  stored(at: number, length: number): boolean;
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
  private cursor: number;
  /** Bytes the sink already held when it was opened. */
  readonly resumed: number;
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
    this.resumed = this.cursor = sink.stored ?? 0;
  }

  put(offset: number, bytes: Uint8Array): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error);
    if (offset + bytes.byteLength <= this.resumed) return Promise.resolve(); // written by the interrupted run
    if (offset < this.resumed) {
      bytes = bytes.subarray(this.resumed - offset);
      offset = this.resumed;
    }
    if (bytes.byteLength === 0) return Promise.resolve();
    if (offset < this.cursor || this.pending.has(offset)) return Promise.reject(new Error(`${this.name}: bytes at offset ${offset} were already stored`));
    return new Promise<void>((resolve, reject) => {
      this.pending.set(offset, { bytes, resolve, reject });
      void this.pump();
    });
  }

  stored(offset: number, length: number): boolean {
    return offset + length <= this.resumed;
  }

  seal(): void {
    if (this.resumed > this.end) {
      this.fail(new Error(`${this.name}: the file holds ${this.resumed} bytes from an earlier run, more than the ${this.end} this conversion writes`));
      return;
    }
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
      stored: (at, n) => c.stored(offset + at, n),
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

