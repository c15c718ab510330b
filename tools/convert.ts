// `npm run convert -- <hf-repo-id | local-dir> [--out dir] [--dtype q4f16,q4,fp16,fp32]
//   [--target webgpu,cpu] [--revision rev] [--keep-download] [--dry-run]`
// Converts a Hugging Face Molmo2 checkpoint into a web model folder (ONNX graphs + manifest).
// A Hub repository's weights are streamed with Range requests unless --keep-download is given.
import { parseArgs } from 'node:util';
import { DTYPES, TARGETS, type Dtype, type Target } from '../src/molmo2/manifest.ts';
import { convertCheckpoint, ConvertError, DEFAULT_DTYPES, DEFAULT_TARGETS, describePlan } from './lib/converter.ts';
import { formatProgress, HubError } from './lib/hub.ts';

const USAGE = `usage: npm run convert -- <hf-repo-id | local-dir> [options]
  --out <dir>            output folder (default public/models/<name>)
  --dtype <list>         ${DTYPES.join(',')} (default ${DEFAULT_DTYPES.join(',')})
  --target <list>        ${TARGETS.join(',')} (default ${DEFAULT_TARGETS.join(',')})
  --revision <rev>       Hub branch, tag or commit (default main)
  --keep-download        download the Hub repository's weight files into .cache/hub first and convert
                         from there (default: stream them with Range requests, storing only the config files)
  --dry-run              check config and tensors, print what would be written, write nothing
environment: HF_TOKEN (gated or private repositories), HF_ENDPOINT (default https://huggingface.co)`;

const splitList = (v: string | undefined) => (v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean));

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        dtype: { type: 'string' },
        target: { type: 'string' },
        revision: { type: 'string' },
        'keep-download': { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(`${positionals.length === 0 ? 'missing the checkpoint to convert' : `one checkpoint at a time, got ${positionals.join(' ')}`}\n${USAGE}`);
    return 2;
  }
  const isTty = process.stderr.isTTY;
  let lastLine = 0;
  /** A progress line without its newline is on the terminal (a log line clears it first). */
  let open = false;
  const onProgress = (p: Parameters<typeof formatProgress>[0]) => {
    const now = Date.now();
    if (!isTty && now - lastLine < 5000 && p.received !== p.total) return;
    lastLine = now;
    const done = p.received === p.total;
    process.stderr.write(isTty ? `\r\x1b[K${formatProgress(p)}${done ? '\n' : ''}` : `${formatProgress(p)}\n`);
    open = isTty && !done;
  };
  const log = (m: string) => {
    if (open) process.stderr.write('\r\x1b[K');
    open = false;
    console.error(m);
  };
  try {
    const result = await convertCheckpoint({
      source: positionals[0],
      out: values.out,
      dtypes: splitList(values.dtype) as Dtype[] | undefined,
      targets: splitList(values.target) as Target[] | undefined,
      revision: values.revision,
      keepDownload: values['keep-download'],
      dryRun: values['dry-run'],
      hub: { onProgress },
      log,
    });
    if (values['dry-run']) {
      console.log(['dry run: nothing written', ...describePlan(result.plan)].join('\n'));
    } else {
      console.log(`converted ${result.plan.source.repo} → ${result.plan.outDir}`);
    }
    return 0;
  } catch (e) {
    if (e instanceof ConvertError) console.error(e.lines.map((l, i) => (i === 0 ? `error: ${l}` : `  ${l}`)).join('\n'));
    else if (e instanceof HubError) console.error(`error: ${e.message}`);
    else console.error(`error: ${(e as Error).stack ?? e}`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
