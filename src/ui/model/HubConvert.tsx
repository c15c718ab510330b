// "Convert from the Hugging Face Hub": a Molmo2 checkpoint (allenai/Molmo2-4B or any Hub id and
// revision) converted in this browser into the model cache, with a check first (what is read, what is
// written, whether storage suffices), one progress bar, cancel, and resume of unfinished conversions.
import { useEffect, useState, type FormEvent } from 'react';
import { formatBytes, formatDuration } from '../../../workers/inference-api.ts';
import type { Dtype } from '../../molmo2/manifest.ts';
import { formatGiB } from '../../runtime/device-plan.ts';
import { CardLine } from './CardLine.tsx';
import { DEFAULT_HUB, hubHosts, useConvertStore } from '../../state/convert-store.ts';
import { useModelStore } from '../../state/model-store.ts';

const STAGE_TEXT = { checking: 'Checking the checkpoint', vision: 'Converting the vision encoder', decoder: 'Converting the language model', saving: 'Saving' } as const;

function hostsText(endpoint: string): string {
  try {
    return hubHosts(endpoint)
      .map((h) => h.replace(/^https?:\/\//, ''))
      .join(', ');
  } catch {
    return endpoint;
  }
}

function ConvertProgress() {
  const { progress, cancel } = useConvertStore();
  if (!progress) return <p aria-live="polite">Starting the conversion…</p>;
  const pct = progress.writeTotal > 0 ? Math.min(99, Math.floor((100 * progress.written) / progress.writeTotal)) : 0;
  return (
    <div className="model-progress" data-testid="convert-progress" data-stage={progress.stage}>
      <div aria-live="polite">
        {STAGE_TEXT[progress.stage]} — read {formatBytes(progress.bytesRead)} of {formatBytes(progress.readTotal)} from the Hub
        {progress.bytesPerSecond > 0 && ` · ${formatBytes(progress.bytesPerSecond)}/s`}
        {progress.etaSeconds !== undefined && ` · about ${formatDuration(progress.etaSeconds)} left`}
      </div>
      <progress aria-label="Conversion progress" max={100} value={pct} />
      <div className="model-muted">
        Written {formatBytes(progress.written)} of about {formatBytes(progress.writeTotal)}
      </div>
      <button type="button" onClick={cancel}>
        Stop conversion
      </button>
    </div>
  );
}

export function HubConvert() {
  const { status, plan, result, error, pending, check, convert, refreshPending, discard } = useConvertStore();
  const preferred = useModelStore((s) => s.capabilities?.preferredDtype);
  const load = useModelStore((s) => s.load);
  const modelBusy = useModelStore((s) => s.status === 'loading');
  const [repo, setRepo] = useState('allenai/Molmo2-4B');
  const [revision, setRevision] = useState('main');
  const [endpoint, setEndpoint] = useState(DEFAULT_HUB);
  const [token, setToken] = useState('');
  const [dtype, setDtype] = useState<Dtype | ''>('');
  useEffect(() => {
    void refreshPending().catch(() => {});
  }, [refreshPending]);
  const chosen: Dtype = dtype || preferred || 'q4';
  const request = { endpoint: endpoint.trim(), repo: repo.trim(), revision: revision.trim(), token: token.trim() || undefined, dtype: chosen };
  const busy = status === 'checking' || status === 'converting';
  const onCheck = (e: FormEvent) => {
    e.preventDefault();
    void check(request);
  };
  const shortfall = plan && plan.freeBytes !== undefined && plan.writeBytes - plan.resumableBytes > plan.freeBytes;
  const gpuShort = plan?.gpu.refusal;
  return (
    <details className="model-convert" data-testid="hub-convert" data-status={status} open={status !== 'idle' || pending.length > 0 || undefined}>
      <summary>Convert a model from the Hugging Face Hub in this browser</summary>
      <form onSubmit={onCheck} className="model-convert-form">
        <label>
          Hub repository <input value={repo} onChange={(e) => setRepo(e.target.value)} disabled={busy} spellCheck={false} />
        </label>
        <label>
          Revision <input value={revision} onChange={(e) => setRevision(e.target.value)} disabled={busy} spellCheck={false} />
        </label>
        <label>
          Weights{' '}
          <select value={chosen} onChange={(e) => setDtype(e.target.value as Dtype)} disabled={busy}>
            {(['q4f16', 'q4', 'fp16', 'fp32'] as const).map((d) => (
              <option key={d} value={d}>
                {d}
                {d === preferred ? ' (this GPU)' : ''}
              </option>
            ))}
          </select>
        </label>
        <details>
          <summary>Hub address and access token</summary>
          <label>
            Hub address <input type="url" value={endpoint} onChange={(e) => setEndpoint(e.target.value)} disabled={busy} />
          </label>
          <label>
            Access token (gated or private models; used for this conversion only, never stored){' '}
            <input type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} disabled={busy} />
          </label>
        </details>
        <p className="model-muted" data-testid="convert-privacy">
          The conversion contacts only {hostsText(endpoint)} to read the checkpoint; nothing is uploaded, and the converted model stays in this browser.
        </p>
        <button type="submit" disabled={busy || !repo.trim()}>
          Check
        </button>
      </form>
      {status === 'checking' && <p aria-live="polite">Checking {repo}…</p>}
      {plan && status === 'checked' && (
        <div className="model-plan" data-testid="convert-plan">
          <div>
            {plan.repo} @ {plan.commit ? plan.commit.slice(0, 12) : plan.revision}: {plan.summary}
            {plan.randomWeights ? ' (random weights)' : ''}.
          </div>
          <div>
            Reads {formatBytes(plan.readBytes)} from the Hub and writes about {formatBytes(plan.writeBytes)} ({plan.dtype}) to this browser's storage
            {plan.resumableBytes > 0 ? `; ${formatBytes(plan.resumableBytes)} of an earlier run is kept` : ''}
            {plan.freeBytes !== undefined ? `; ${formatBytes(plan.freeBytes)} free` : ''}.
          </div>
          <CardLine card={plan.card} testId="convert-card" />
          <div data-testid="convert-gpu">
            {plan.gpu.allocatableBytes === undefined
              ? `It will need about ${formatGiB(plan.gpu.needBytes)} of GPU memory (not measured here: ${plan.gpu.skipped}).`
              : gpuShort
                ? null
                : `It will need about ${formatGiB(plan.gpu.needBytes)} of GPU memory, and this GPU allocated it.`}
          </div>
          {gpuShort ? (
            <p role="alert" className="model-error" data-testid="convert-gpu-short">
              {gpuShort}
            </p>
          ) : shortfall ? (
            <p role="alert" className="model-error">
              Not enough browser storage: about {formatBytes(plan.writeBytes - plan.resumableBytes)} needed, {formatBytes(plan.freeBytes ?? 0)} free. Delete cached models or free disk space.
            </p>
          ) : (
            <button type="button" onClick={() => void convert(request)}>
              Convert in this browser
            </button>
          )}
        </div>
      )}
      {status === 'converting' && <ConvertProgress />}
      {status === 'done' && result && (
        <div className="model-loaded" data-testid="convert-done">
          Converted <strong>{result.name}</strong> ({formatBytes(result.bytes)}
          {result.resumedBytes > 0 ? `, ${formatBytes(result.resumedBytes)} kept from an earlier run` : ''}).{' '}
          <button type="button" disabled={modelBusy} onClick={() => void load({ kind: 'cached', id: result.id }, result.name)}>
            Load {result.name}
          </button>
        </div>
      )}
      {error && (
        <p role="alert" className="model-error" data-testid="convert-error">
          {error}
        </p>
      )}
      {pending.length > 0 && (
        <ul aria-label="Unfinished conversions" className="model-pending">
          {pending.map((p) => (
            <li key={p.id} data-testid="pending-conversion">
              {p.key.repo} ({p.key.dtype}) — {formatBytes(p.bytes)}
              {p.expectedBytes ? ` of about ${formatBytes(p.expectedBytes)}` : ''} converted{' '}
              <button
                type="button"
                disabled={busy}
                onClick={() => void convert({ endpoint: p.key.endpoint, repo: p.key.repo, revision: p.key.revision, dtype: p.key.dtype as Dtype, target: p.key.target as 'webgpu', token: token.trim() || undefined })}
              >
                Resume
              </button>{' '}
              <button type="button" disabled={busy} aria-label={`Discard the unfinished conversion of ${p.key.repo}`} onClick={() => void discard(p.id)}>
                Discard
              </button>
            </li>
          ))}
        </ul>
      )}
    </details>
  );
}
