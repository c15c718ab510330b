// An empty module: tsconfig.runtime.json and tsconfig.molmo2.json resolve libraries their layer must
// not use (React, Konva and zustand belong to the page; molmo2 also keeps off onnxruntime, comlink
// and mediabunny) to this file, so importing one fails the type-check with "Module … has no
// exported member …" (TypeScript names the first library mapped here, whichever was imported).
export {};
