// After the whole browser-test run: removes the tiny test model that the runtime spec files share
// (e2e/runtime-model.ts builds it once per run), unless another run still uses it.
import { removeRuntimeModel } from './runtime-model.ts';

export default async function globalTeardown(): Promise<void> {
  await removeRuntimeModel();
}
