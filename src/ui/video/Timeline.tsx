// Filmstrip of thumbnails: click selects a frame, shift/ctrl-click several, drag a time range (its
// start, end and length read out while dragging); a selected range has a handle at each end to move
// that end. The frames Molmo2 would sample from the range are marked.
import { useEffect, useRef, useState } from 'react';
import { presentedFrameIndex, formatTime } from '../../molmo2/video.ts';
import { MOST_FRAMES, selectionSampleTimes, useVideoStore } from '../../state/video-store.ts';
import { decoder } from './decode-client.ts';
import './timeline.css';

const THUMBS = 16;
const THUMB_HEIGHT = 54;

export function Timeline() {
  const info = useVideoStore((s) => s.info);
  const frame = useVideoStore((s) => s.frame);
  const selection = useVideoStore((s) => s.selection);
  const maxFrames = useVideoStore((s) => s.maxFrames);
  const [thumbs, setThumbs] = useState<{ time: number; url: string }[]>([]);
  const stripRef = useRef<HTMLDivElement>(null);
  const drag = useRef<{ startX: number; startT: number } | null>(null);
  const [dragRange, setDragRange] = useState<[number, number] | null>(null);

  useEffect(() => {
    if (!info) return;
    let cancelled = false;
    setThumbs([]);
    decoder()
      .thumbnails(THUMBS, THUMB_HEIGHT)
      .then(async (list) => {
        const out = [];
        for (const { time, bitmap } of list) {
          const c = new OffscreenCanvas(bitmap.width, bitmap.height);
          c.getContext('2d')!.drawImage(bitmap, 0, 0);
          bitmap.close();
          out.push({ time, url: URL.createObjectURL(await c.convertToBlob({ type: 'image/jpeg', quality: 0.7 })) });
        }
        if (!cancelled) setThumbs(out);
      })
      .catch(() => {});
    return () => {
      cancelled = true;
    };
  }, [info]);

  if (!info) return null;
  const duration = info.duration || info.frameTimes[info.frameCount - 1] || 1;
  const timeAt = (clientX: number) => {
    const r = stripRef.current!.getBoundingClientRect();
    return Math.min(duration, Math.max(0, ((clientX - r.left) / r.width) * duration));
  };
  const pct = (t: number) => `${(t / duration) * 100}%`;
  const samples = selectionSampleTimes(selection, maxFrames);

  return (
    <div className="timeline">
      <div
        className="strip"
        ref={stripRef}
        data-testid="filmstrip"
        role="slider"
        tabIndex={0}
        aria-label="Timeline"
        aria-valuemin={1}
        aria-valuemax={info.frameCount}
        aria-valuenow={frame + 1}
        onPointerDown={(e) => {
          drag.current = { startX: e.clientX, startT: timeAt(e.clientX) };
          (e.target as Element).setPointerCapture?.(e.pointerId);
        }}
        onPointerMove={(e) => {
          const d = drag.current;
          if (d && Math.abs(e.clientX - d.startX) > 4) setDragRange([d.startT, timeAt(e.clientX)]);
        }}
        onPointerUp={(e) => {
          const d = drag.current;
          drag.current = null;
          setDragRange(null);
          if (!d) return;
          const store = useVideoStore.getState();
          if (Math.abs(e.clientX - d.startX) > 4) {
            store.selectRange(d.startT, timeAt(e.clientX));
            return;
          }
          const f = presentedFrameIndex(timeAt(e.clientX), info.frameTimes);
          if (e.shiftKey || e.ctrlKey || e.metaKey) store.selectFrame(f, true);
          else {
            store.selectFrame(f, false);
          }
        }}
      >
        {thumbs.map((t) => (
          <img key={t.time} src={t.url} alt="" draggable={false} style={{ left: pct(t.time), width: `${100 / THUMBS}%` }} />
        ))}
        {selection.kind === 'range' && <div className="range" data-testid="range" style={{ left: pct(selection.start), width: pct(selection.end - selection.start) }} />}
        {selection.kind === 'range' &&
          !dragRange &&
          (['start', 'end'] as const).map((edge) => (
            <div
              key={edge}
              className={`range-handle ${edge}`}
              data-testid={`range-handle-${edge}`}
              title={`Drag to move the range's ${edge}`}
              style={{ left: pct(selection[edge]) }}
              onPointerDown={(e) => {
                // Moving one end is a drag from the other end: the range keeps that end fixed.
                e.stopPropagation();
                drag.current = { startX: -Infinity, startT: edge === 'start' ? selection.end : selection.start };
                stripRef.current?.setPointerCapture?.(e.pointerId);
                setDragRange([drag.current.startT, timeAt(e.clientX)]);
              }}
            />
          ))}
        {dragRange && (
          <div className="range dragging" style={{ left: pct(Math.min(...dragRange)), width: pct(Math.abs(dragRange[1] - dragRange[0])) }}>
            <span className="drag-readout" data-testid="drag-readout">
              {formatTime(Math.min(...dragRange))} – {formatTime(Math.max(...dragRange))} · {Math.abs(dragRange[1] - dragRange[0]).toFixed(1)} s
            </span>
          </div>
        )}
        {selection.kind === 'frames' && selection.frames.map((f) => <div key={f} className="picked" style={{ left: pct(info.frameTimes[f]) }} />)}
        {samples.map((t) => (
          <div key={t} className="sample" data-testid="sample-mark" data-time={t.toFixed(3)} style={{ left: pct(t) }} />
        ))}
        <div className="playhead" style={{ left: pct(info.frameTimes[frame]) }} />
      </div>
      <div className="selection-line" data-testid="selection" aria-live="polite">
        {selection.kind === 'none' && 'No selection: the current frame is used.'}
        {selection.kind === 'frames' && `${selection.frames.length} frame${selection.frames.length > 1 ? 's' : ''} selected: ${selection.frames.map((f) => f + 1).join(', ')}`}
        {selection.kind === 'range' &&
          `Range ${formatTime(selection.start)} – ${formatTime(selection.end)}: ${samples.length} sampled frames (≤ 2 fps, cap ${maxFrames})`}
        <label className="cap">
          frame cap
          <input
            type="number"
            min={1}
            max={MOST_FRAMES}
            value={maxFrames}
            onChange={(e) => useVideoStore.getState().setMaxFrames(Number(e.target.value))}
            aria-label="Frame cap"
          />
        </label>
      </div>
    </div>
  );
}
