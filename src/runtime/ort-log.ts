// onnxruntime's own log lines. The wasm build prints them through console.error, bound when the wasm
// starts, so the capture is installed before that (by setupOrt): while a capture runs, onnxruntime's
// lines go to it instead of the console (its expected "nodes placed on the CPU" warning is not an
// error of the app); at other times they pass through.
const ORT_LINE = /\[[VIWEF]:onnxruntime/;
let installed = false;
let sink: string[] | undefined;

export function installOrtLogCapture(): void {
  if (installed) return;
  installed = true;
  for (const level of ['error', 'warn', 'log'] as const) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      if (sink && typeof args[0] === 'string' && ORT_LINE.test(args[0])) sink.push(args[0]);
      else original(...args);
    };
  }
}

/** Runs `work` collecting onnxruntime's log lines meanwhile (one capture at a time: the worker creates sessions one by one). */
export async function withOrtLog<T>(work: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const outer = sink;
  sink = lines;
  try {
    return { value: await work(), lines };
  } finally {
    sink = outer;
  }
}
