// `npm run make-tiny -- [--out dir] [--seed n] [--size tiny|medium|bench]`: writes a Molmo2 checkpoint
// with random weights in the published Hugging Face layout.
import { parseArgs } from 'node:util';
import { makeTinyCheckpoint, TINY_SIZES, WIDTHS, type TinySize } from './lib/tiny-checkpoint.ts';

const USAGE = 'usage: npm run make-tiny -- [--out dir] [--seed n] [--size tiny|medium|bench]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: { out: { type: 'string' }, seed: { type: 'string', default: '0' }, size: { type: 'string', default: 'tiny' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const size = values.size as TinySize;
  if (!TINY_SIZES.includes(size)) {
    console.error(`unknown --size "${values.size}" (choose ${TINY_SIZES.join(', ')})\n${USAGE}`);
    return 2;
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    console.error(`--seed must be a non-negative integer, got "${values.seed}"`);
    return 2;
  }
  const outDir = values.out ?? `.cache/${size}-checkpoint`;
  const started = performance.now();
  const result = await makeTinyCheckpoint({ outDir, seed, size, log: (m) => console.error(m) });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `wrote ${result.outDir}: ${size} Molmo2 checkpoint, seed ${seed}, ${result.parameters.toLocaleString('en')} parameters, ` +
      `${(result.totalSize / 1e6).toFixed(1)} MB of weights in ${seconds} s`,
  );
  console.log(`widths: ${JSON.stringify(WIDTHS[size])}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`make-tiny: ${(e as Error).message}`);
    process.exit(1);
  },
);
