import { useMemo } from 'react';
import { useVideoStore } from '../../state/video-store.ts';
import { formatTime, isVariableFrameRate } from '../../molmo2/video.ts';

export function VideoInfoLine() {
  const info = useVideoStore((s) => s.info);
  const loading = useVideoStore((s) => s.loading);
  // An average fps would mislead when frames come at irregular times.
  const variable = useMemo(() => (info ? isVariableFrameRate(info.frameTimes) : false), [info]);
  if (loading) return <p className="info-line">Opening {loading}…</p>;
  if (!info) return null;
  return (
    <>
      <p className="info-line" data-testid="video-info">
        <strong>{info.fileName}</strong> · {info.codec.toUpperCase()} · {info.width}×{info.height}
        {info.rotation ? ` (rotated ${info.rotation}°)` : ''}
        {info.container === 'image' ? (
          ' · still image'
        ) : (
          <>
            {' '}· {variable ? 'variable frame rate' : `${info.fps.toFixed(2)} fps`} · {formatTime(info.duration)} · {info.frameCount} frames
          </>
        )}
      </p>
      {info.notice && (
        <p className="info-notice" role="status" data-testid="video-notice">
          {info.notice}
        </p>
      )}
    </>
  );
}

export function ErrorBanner() {
  const error = useVideoStore((s) => s.error);
  if (!error) return null;
  return (
    <div className="error-banner" role="alert" data-testid="video-error">
      {error}
      <button type="button" aria-label="Dismiss" onClick={() => useVideoStore.getState().setError(null)}>
        ×
      </button>
    </div>
  );
}
