// `npm start`: install what is missing, prepare the default model, serve the app on :5173.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDeps, root, run } from './ensure.mjs';

ensureDeps();
const prepare = join(root, 'tools', 'prepare-default-model.ts');
if (existsSync(prepare)) {
  const status = run('npx', ['tsx', prepare]);
  if (status !== 0) console.error('[start] preparing the default model failed; the app starts without a model.');
}
process.exit(run(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), '--port', '5173', '--strictPort', '--host', '127.0.0.1']));
