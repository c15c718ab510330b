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
