// Model panel: what this device can do, where to load a model from (bundled, URL, local folder, or
// converted from the Hub in this browser),
// download progress, the loaded model (with a banner for random weights) and the browser cache.
import { useEffect, useLayoutEffect, useRef, useState, type FormEvent } from 'react';
import { formatBytes, formatDuration, type ModelSource } from '../../../workers/inference-api.ts';
import { useModelStore } from '../../state/model-store.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { appUrl } from '../../app-url.ts';
import { HubConvert } from './HubConvert.tsx';
import { modelCard } from '../../molmo2/family.ts';
import { CardLine } from './CardLine.tsx';
import { formatGiB } from '../../runtime/device-plan.ts';
import './model-panel.css';

const STAGE_TEXT = { manifest: 'Reading manifest', download: 'Downloading', preparing: 'Preparing the GPU', ready: 'Ready' } as const;

function Capabilities() {
  const caps = useModelStore((s) => s.capabilities);
  if (!caps) return <p className="model-muted">Checking WebGPU…</p>;
  if (!caps.webgpu) return <p role="alert" className="model-error" data-testid="no-webgpu">{caps.message}</p>;
  const a = caps.adapter;
  return (
    <div className="model-caps" data-testid="capabilities">
      <div>
        GPU: {a?.vendor || 'unknown'} {a?.architecture} {a?.isFallbackAdapter ? '(software fallback)' : ''}
      </div>
      <div>
        Weights: <strong>{caps.preferredDtype}</strong> · fp16 shaders {caps.shaderF16 ? 'yes' : 'no'} · max buffer {formatBytes(caps.maxBufferSize)}
        {caps.subgroupSizes ? ` · subgroups ${caps.subgroupSizes[0]}–${caps.subgroupSizes[1]}` : ''}
      </div>
      {caps.message && <div className="model-muted">{caps.message}</div>}
    </div>
  );
}

function Progress() {
  const { progress, loadingLabel, cancelLoad } = useModelStore();
  if (!progress) return <p aria-live="polite">Starting {loadingLabel}…</p>;
  const pct = progress.bytesTotal ? Math.floor((100 * progress.bytesDone) / progress.bytesTotal) : 0;
  const downloading = progress.stage === 'download';
  return (
    <div className="model-progress" data-testid="load-progress">
      <div aria-live="polite">
        {STAGE_TEXT[progress.stage]} {loadingLabel}
        {downloading && progress.bytesTotal > 0 && ` — ${formatBytes(progress.bytesDone)} of ${formatBytes(progress.bytesTotal)}`}
        {downloading && progress.bytesPerSecond > 0 && ` · ${formatBytes(progress.bytesPerSecond)}/s`}
        {downloading && progress.etaSeconds !== undefined && ` · ${formatDuration(progress.etaSeconds)} left`}
      </div>
      {/* Never shows 100 % before the model is ready; preparing has no byte measure. */}
      {progress.stage === 'preparing' ? (
        <progress aria-label="Preparing the GPU" />
      ) : (
        <progress aria-label="Download progress" max={100} value={progress.stage === 'ready' ? 100 : Math.min(pct, 99)} />
      )}
      <div className="model-muted">{progress.message}</div>
      <details>
        <summary>Files</summary>
        <ul className="model-files">
          {progress.files.map((f) => (
            <li key={f.path}>
              {f.path} — {formatBytes(f.done)} / {formatBytes(f.bytes)} ({f.state})
            </li>
          ))}
        </ul>
      </details>
      <button type="button" onClick={cancelLoad}>
        Cancel
      </button>
    </div>
  );
}

/** A model with random weights says so, collapsed too (then in one sentence): its answers are meaningless. */
function RandomWeightsBanner({ short }: { short: boolean }) {
  const m = useModelStore((s) => s.loaded);
  if (!m?.randomWeights) return null;
  return (
    <div role="note" className="model-banner" data-testid="random-weights-banner">
      <strong>{m.name} has random weights.</strong>
      {short ? (
        ' Its answers are meaningless.'
      ) : (
        <>
          {' '}
          It runs the whole pipeline but its answers are meaningless. To use a real Molmo2, convert allenai/Molmo2-4B below (in this browser), or
          once with <code>npm run convert -- allenai/Molmo2-4B</code> and reload this page.
        </>
      )}
    </div>
  );
}

function Loaded() {
  const m = useModelStore((s) => s.loaded);
  if (!m) return null;
  return (
    <div className="model-loaded" data-testid="loaded-model">
      <div>
        Loaded <strong>{m.name}</strong> ({m.dtype}: {m.precision.decoder} decoder, {m.precision.vision} vision encoder, {m.precision.activations} activations;{' '}
        {m.kvCache === 'static' ? 'static' : 'growing'} KV cache, {m.maxContext} tokens) from {m.from}
        {m.storage === 'memory' ? ', not cached' : ''} in {formatDuration(m.timings.totalMs / 1000)}.
      </div>
      <CardLine card={m.card} testId="loaded-card" />
      <div className="model-muted" data-testid="gpu-fit">
        {m.gpuFit.allocatableBytes !== undefined
          ? `Checked before loading: it needs about ${formatGiB(m.gpuFit.needBytes)} of GPU memory, and the GPU allocated it.`
          : `It needs about ${formatGiB(m.gpuFit.needBytes)} of GPU memory (not measured before loading: ${m.gpuFit.skipped}).`}
      </div>
      {m.memoryPlan && (
        <div className="model-plan" data-testid="memory-plan">
          Memory: {m.memoryPlan.text}.
        </div>
      )}
      {m.warnings.map((w) => (
        <div key={w} className="model-warning">
          {w}
        </div>
      ))}
    </div>
  );
}

function SourcePicker() {
  const { bundled, load, status } = useModelStore();
  // The variant this GPU would load: its download is the size that matters.
  const preferred = useModelStore((s) => s.capabilities?.preferredDtype);
  const [url, setUrl] = useState('');
  const folderInput = useRef<HTMLInputElement>(null);
  const busy = status === 'loading';
  const pickFolder = async () => {
    const picker = (window as Window & { showDirectoryPicker?: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker;
    if (!picker) return folderInput.current?.click();
    try {
      const handle = await picker();
      await load({ kind: 'directory', handle }, handle.name);
    } catch (e) {
      if ((e as DOMException).name !== 'AbortError') throw e;
    }
  };
  const onUrl = (e: FormEvent) => {
    e.preventDefault();
    if (url.trim()) void load({ kind: 'url', url: new URL(url.trim(), location.href).href }, url.trim());
  };
  const onFiles = (files: FileList | null) => {
    if (!files?.length) return;
    const source: ModelSource = { kind: 'files', files: [...files] };
    void load(source, files[0].webkitRelativePath.split('/')[0] || 'folder');
  };
  return (
    <div className="model-sources">
      {bundled.length > 0 && (
        <ul className="model-bundled" aria-label="Models on this server">
          {bundled.map((b) => (
            <li key={b.folder}>
              <button type="button" disabled={busy} onClick={() => void load({ kind: 'url', url: appUrl(`models/${b.folder}/`) }, b.name)}>
                Load {b.name}
              </button>{' '}
              <span className="model-muted" data-testid="bundled-sizes">
                {b.variants.map((v) => `${v.dtype} ${formatBytes(v.bytes)}${v.dtype === preferred ? ' (this GPU)' : ''}`).join(' · ')}
                {b.randomWeights ? ' · random weights' : ''}
              </span>
              <CardLine card={modelCard({ name: b.name, source: b.source, architecture: { parameters: b.parameters, randomWeights: b.randomWeights } })} testId="bundled-card" />
            </li>
          ))}
        </ul>
      )}
      {bundled.length === 0 && (
        <p className="model-muted">
          No converted model on this server. Run <code>npm run convert -- allenai/Molmo2-4B</code>, or load one from a URL or a folder.
        </p>
      )}
      <form onSubmit={onUrl} className="model-url">
        <label>
          Model URL <input type="url" placeholder="https://…/Molmo2-4B/" value={url} onChange={(e) => setUrl(e.target.value)} disabled={busy} />
        </label>
        <button type="submit" disabled={busy || !url.trim()}>
          Load
        </button>
      </form>
      <button type="button" disabled={busy} onClick={() => void pickFolder()}>
        Load a local folder…
      </button>
      <input ref={folderInput} type="file" hidden data-testid="folder-input" {...{ webkitdirectory: '' }} onChange={(e) => onFiles(e.target.files)} />
    </div>
  );
}

function CachedModels() {
  const { cached, storage, load, removeCached, status } = useModelStore();
  return (
    <section className="model-cached" aria-label="Cached models">
      <h3>In this browser</h3>
      {storage && storage.quota > 0 && (
        <div className="model-muted">
          Storage: {formatBytes(storage.usage)} of {formatBytes(storage.quota)}
          {storage.persisted === false ? ' (may be cleared by the browser when space runs low)' : ''}
        </div>
      )}
      {cached.length === 0 ? (
        <div className="model-muted">No cached models.</div>
      ) : (
        <ul>
          {cached.map((c) => (
            <li key={c.id} data-testid="cached-model">
              {c.name} — {formatBytes(c.bytes)}{' '}
              <button type="button" disabled={status === 'loading'} onClick={() => void load({ kind: 'cached', id: c.id }, c.name)}>
                Load
              </button>{' '}
              <button type="button" disabled={status === 'loading'} aria-label={`Delete ${c.name} from this browser`} onClick={() => void removeCached(c.id)}>
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function ModelPanel() {
  const { status, error, init, loaded } = useModelStore();
  useEffect(() => {
    void init().catch((e) => useModelStore.setState({ status: 'error', error: String((e as Error).message ?? e) }));
  }, [init]);
  // Once a model is loaded and a video or image is open, the panel shrinks to one line (a button that
  // opens it again), so the video, the question and its answer share one screen. With nothing open
  // there is nothing to make room for, and the details (cache, memory) stay in view.
  const mediaOpen = useVideoStore((s) => s.info !== null);
  const collapsible = status === 'ready' && loaded !== undefined && mediaOpen;
  const [open, setOpen] = useState(false);
  // Each newly loaded model starts collapsed.
  useEffect(() => setOpen(false), [loaded?.id, loaded?.dtype]);
  const collapsed = collapsible && !open;
  // Folding hides the control the user last used (the Load button, disabled while loading, has
  // already dropped the focus to the page): the focus moves to the one-line toggle — unless the user
  // has gone on elsewhere (e.g. typing a question).
  const toggleRef = useRef<HTMLButtonElement>(null);
  // A layout effect: it runs before the browser drops the focus of the now hidden control.
  useLayoutEffect(() => {
    const at = document.activeElement;
    if (collapsed && (!at || at === document.body || at.closest('#model-details'))) toggleRef.current?.focus();
  }, [collapsed]);
  return (
    <section className={`model-panel${collapsed ? ' collapsed' : ''}`} aria-label="Model" data-testid="model-panel" data-status={status}>
      {collapsible ? (
        <h2 className="model-line">
          <button ref={toggleRef} type="button" aria-expanded={open} aria-controls="model-details" onClick={() => setOpen((v) => !v)} data-testid="model-toggle">
            Model: {loaded.name} · {loaded.dtype} {open ? '▾' : '▸'}
          </button>
        </h2>
      ) : (
        <h2>Model</h2>
      )}
      <RandomWeightsBanner short={collapsed} />
      {/* Hidden, not removed: collapsing must not lose a typed URL or an open <details>. */}
      <div id="model-details" className="model-details" hidden={collapsed}>
        <Capabilities />
        {status === 'loading' ? <Progress /> : <SourcePicker />}
        {error && (
          <p role="alert" className="model-error">
            {error}
          </p>
        )}
        <Loaded />
        <HubConvert />
        <CachedModels />
      </div>
    </section>
  );
}
