// "Answer on a server": off by default. The address, model id and optional API key of an
// OpenAI-compatible server (a vLLM running Molmo2), and the switch; turning it on first asks the user
// in plain words (ConfirmServer), since the frames then leave this device. One line while folded, so
// the ask box stays near the video.
import { useEffect, useRef, useState } from 'react';
import { useServerStore } from '../../state/server-store.ts';
import { useEscapeCloses } from '../keys/escape.ts';
import './server-panel.css';

export function ServerPanel() {
  const { url, model, apiKey, on, choice, confirming, error, setUrl, setModel, setApiKey, requestOn, turnOff } = useServerStore();
  // Folded to one line until opened; a message opens it, so it is never hidden.
  const [open, setOpen] = useState(false);
  useEffect(() => {
    if (error) setOpen(true);
  }, [error]);
  return (
    <section className="server-panel" aria-label="Answer on a server" data-testid="server-panel" data-on={on}>
      <details open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
        <summary>
          Answer on a server: <strong>{on && choice ? `on — ${choice.host}` : 'off'}</strong>
        </summary>
        <p className="server-muted">
          {on && choice
            ? `Questions run on ${choice.host}: the frames each one is about and its text are sent there. Turn this off to keep everything on this device.`
            : 'Off: questions run on this device and nothing leaves it. On: each question and the frames it is about are sent to the server below.'}
        </p>
        <div className="server-fields">
          <label>
            Server address
            <input type="text" inputMode="url" spellCheck={false} placeholder="http://gpu-box:8000/v1" value={url} onChange={(e) => setUrl(e.target.value)} disabled={on} />
          </label>
          <label>
            Model id
            <input type="text" spellCheck={false} placeholder="allenai/Molmo2-8B" value={model} onChange={(e) => setModel(e.target.value)} disabled={on} />
          </label>
          <label>
            API key (optional; kept until this page is closed)
            <input type="password" autoComplete="off" value={apiKey} onChange={(e) => setApiKey(e.target.value)} disabled={on} />
          </label>
        </div>
        <label className="server-switch">
          {/* Turning it off during a question stops that question; turning it on only asks first. */}
          <input type="checkbox" role="switch" checked={on} onChange={() => (on ? void turnOff() : requestOn())} />
          Answer on a server
        </label>
        {error && (
          <p role="alert" className="server-error" data-testid="server-error">
            {error}
          </p>
        )}
      </details>
      {confirming && choice && <ConfirmServer host={choice.host} baseUrl={choice.baseUrl} />}
    </section>
  );
}

/** The question the user answers before any frame may leave: what is sent, where, and what is not. */
function ConfirmServer({ host, baseUrl }: { host: string; baseUrl: string }) {
  const { confirm, dismiss } = useServerStore();
  const ref = useRef<HTMLDialogElement>(null);
  const keep = useRef<HTMLButtonElement>(null);
  useEscapeCloses(dismiss);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    // The safe answer has the focus (showModal gives it to the first button): Enter alone sends nothing.
    keep.current?.focus();
    return () => d?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      className="server-confirm"
      aria-labelledby="server-confirm-title"
      aria-describedby="server-confirm-what"
      data-testid="server-confirm"
      onCancel={(e) => {
        e.preventDefault();
        dismiss();
      }}
    >
      <h2 id="server-confirm-title">Send frames to {host}?</h2>
      <div id="server-confirm-what">
        <p>
          While this is on, each question you ask sends <strong>the frames it is about (pictures from your video)</strong> and <strong>the question</strong> (with the
          earlier turns of a follow-up) to <code>{baseUrl}</code>, and the answer comes from that server, not from this device.
        </p>
        <p>Nothing else is sent: not the video file or its name, not your other results, not anything stored in this browser.</p>
        <p>You can turn this off at any time.</p>
      </div>
      <div className="server-confirm-actions">
        <button type="button" onClick={() => void confirm()}>
          Send frames to {host}
        </button>
        <button type="button" ref={keep} onClick={dismiss}>
          Keep everything on this device
        </button>
      </div>
    </dialog>
  );
}
