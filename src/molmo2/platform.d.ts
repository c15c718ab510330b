// The few platform APIs src/molmo2 uses, declared here so that it compiles without DOM, worker or
// Node types (tsconfig.molmo2.json): every browser, worker and Node since 18 has them. Only the
// members used are declared; adding one here is a deliberate step out of pure ECMAScript.
// WebAssembly is declared in wasm.d.ts.

declare function structuredClone<T>(value: T): T;

declare class TextEncoder {
  encode(input?: string): Uint8Array<ArrayBuffer>;
}

declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: ArrayBufferView | ArrayBuffer): string;
}

// HTTP for reading checkpoints from the Hub with Range requests (src/molmo2/hub/).
declare function setTimeout(handler: () => void, ms?: number): unknown;
declare function clearTimeout(id: unknown): void;

declare class AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}

interface ReadableStreamDefaultReader<R> {
  read(): Promise<{ done: true; value?: undefined } | { done: false; value: R }>;
  cancel(reason?: unknown): Promise<void>;
  releaseLock(): void;
}

interface ReadableStream<R> {
  getReader(): ReadableStreamDefaultReader<R>;
  cancel(reason?: unknown): Promise<void>;
}

interface Headers {
  get(name: string): string | null;
}

interface Response {
  readonly status: number;
  /** The address of the answer, after redirects. */
  readonly url: string;
  readonly redirected: boolean;
  readonly headers: Headers;
  readonly body: ReadableStream<Uint8Array> | null;
  text(): Promise<string>;
}

interface RequestInit {
  headers?: Record<string, string>;
  redirect?: 'follow' | 'error' | 'manual';
  signal?: AbortSignal;
}

declare function fetch(input: string, init?: RequestInit): Promise<Response>;
