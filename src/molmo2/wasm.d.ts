// The WebAssembly API that onnx/q4-simd.ts uses. Neither the ECMAScript lib nor Node's types declare
// it (the DOM and WebWorker libs do), so the platform-free, Node and unit-test type-checks include
// this file; only the members used are declared.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: ArrayBufferView | ArrayBuffer);
  }
  class Instance {
    constructor(module: Module, imports?: object);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(deltaPages: number): number;
  }
}
