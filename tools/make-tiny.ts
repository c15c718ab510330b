// `npm run make-tiny -- [--out dir] [--seed n] [--size tiny|medium|bench|demo|4b|8b] [--family 4b|8b|videopoint-4b|o-7b|molmopoint]`:
// writes a Molmo2 checkpoint with random weights in the published Hugging Face layout. tiny, medium, demo and
// bench scale the widths down (float32) and keep every other config value of the family's published
// config.json (Molmo2-4B unless told; 8b: rope_theta 1e6 and an lm_head of its own). 4b and 8b keep the
// published config.json whole and write BF16 shards of at most 5 GB, streamed. The unseen values of the
// partial 8B and VideoPoint-4B configs are filled as tools/lib/published-configs.ts lists.
import { parseArgs } from 'node:util';
import { CHECKPOINT_SIZES, FAMILIES, isFullSize, makeTinyCheckpoint, WIDTHS, type CheckpointSize, type Family } from './lib/tiny-checkpoint.ts';

const USAGE = 'usage: npm run make-tiny -- [--out dir] [--seed n] [--size tiny|medium|bench|demo|4b|8b] [--family 4b|8b|videopoint-4b|o-7b|molmopoint]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: { out: { type: 'string' }, seed: { type: 'string', default: '0' }, size: { type: 'string', default: 'tiny' }, family: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
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
  const size = values.size as CheckpointSize;
  if (!CHECKPOINT_SIZES.includes(size)) {
    console.error(`unknown --size "${values.size}" (choose ${CHECKPOINT_SIZES.join(', ')})\n${USAGE}`);
    return 2;
  }
  const family = values.family as Family | undefined;
  if (family !== undefined && (!FAMILIES.includes(family) || (isFullSize(size) && family !== size))) {
    console.error(`--family "${values.family}" does not go with --size ${size} (choose ${isFullSize(size) ? size : FAMILIES.join(', ')})\n${USAGE}`);
    return 2;
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    console.error(`--seed must be a non-negative integer, got "${values.seed}"`);
    return 2;
  }
  const outDir = values.out ?? `.cache/${family && !isFullSize(size) ? `${family}-` : ''}${size}-checkpoint`;
  const started = performance.now();
  const result = await makeTinyCheckpoint({ outDir, seed, size, family, log: (m) => console.error(m) });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `wrote ${result.outDir}: ${size} Molmo2${family && !isFullSize(size) ? ` (${family} config)` : ''} checkpoint, seed ${seed}, ${result.parameters.toLocaleString('en')} parameters, ` +
      `${(result.totalSize / 1e6).toFixed(1)} MB of weights in ${seconds} s`,
  );
  if (isFullSize(size)) {
    const { vit, adapter, text, vitBlocksUsed, tieWordEmbeddings } = result.config;
    console.log(
      `config: ViT ${vit.hiddenSize} wide, ${vit.declaredLayers} declared / ${vitBlocksUsed} used blocks; adapter ${adapter.hiddenSize} → ${adapter.intermediateSize}; ` +
        `decoder ${text.hiddenSize}×${text.numLayers}, ${text.numHeads} heads / ${text.numKvHeads} KV heads, head_dim ${text.headDim}, intermediate ${text.intermediateSize}, ` +
        `vocab ${text.vocabSize} + ${text.additionalVocabSize}, rope_theta ${text.ropeTheta}, ${tieWordEmbeddings ? 'tied' : 'untied'} lm_head; BF16 weights`,
    );
  } else console.log(`widths: ${JSON.stringify(WIDTHS[size])}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`make-tiny: ${(e as Error).message}`);
    process.exit(1);
  },
);
