// The exact decoded frame on a canvas, with a Konva stage on top for overlays in frame pixels.
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { Layer, Stage } from 'react-konva';
import { useVideoStore } from '../../state/video-store.ts';
import { formatTime } from '../../molmo2/video.ts';
import type { VideoInfo } from '../../../workers/decode-api.ts';
import { decoder } from './decode-client.ts';
import { TrySampleButton } from './TrySample.tsx';

export function Player({ overlay }: { overlay?: ReactNode }) {
  const info = useVideoStore((s) => s.info);
  const frame = useVideoStore((s) => s.frame);
  const playing = useVideoStore((s) => s.playing);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const boxRef = useRef<HTMLDivElement>(null);
  // The frame on the canvas, for this video only: a new video shows nothing as shown until drawn.
  const [drawn, setDrawn] = useState<{ info: VideoInfo | null; frame: number }>({ info: null, frame: -1 });
  const shown = drawn.info === info ? drawn.frame : -1;
  const [box, setBox] = useState({ width: 0, height: 0 });

  // Draw the requested frame; a newer request wins over a slower older one.
  const request = useRef(0);
  useEffect(() => {
    if (!info) return;
    const id = ++request.current;
    decoder()
      .frameAt(frame)
      .then((bitmap) => {
        const canvas = canvasRef.current;
        if (id !== request.current || !canvas) return bitmap.close();
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
        canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
        bitmap.close();
        setDrawn({ info, frame });
      })
      .catch((e: unknown) => useVideoStore.getState().setError(e instanceof Error ? e.message : String(e)));
  }, [info, frame]);

  // Playback: advance one frame per frame duration, waiting for each frame to be shown.
  useEffect(() => {
    if (!playing || !info) return;
    if (shown !== frame) return;
    const next = frame + 1;
    if (next >= info.frameCount) {
      useVideoStore.getState().setPlaying(false);
      return;
    }
    const wait = Math.max(0, (info.frameTimes[next] - info.frameTimes[frame]) * 1000);
    const timer = setTimeout(() => useVideoStore.getState().seek(next), wait);
    return () => clearTimeout(timer);
  }, [playing, shown, frame, info]);

  // Keep the overlay the size of the displayed frame.
  useEffect(() => {
    const el = canvasRef.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setBox({ width: el.clientWidth, height: el.clientHeight }));
    ro.observe(el);
    return () => ro.disconnect();
  }, [info]);

  if (!info) {
    return (
      <div className="player-empty">
        Drop a video anywhere, or choose one to begin.
        <TrySampleButton />
      </div>
    );
  }
  const scale = box.width / info.width || 1;
  return (
    <div className="player">
      <div className="stage" ref={boxRef}>
        <canvas ref={canvasRef} data-testid="frame-canvas" data-shown-frame={shown} aria-label={`Video frame ${frame + 1}`} />
        <div className="overlay" style={{ width: box.width, height: box.height }}>
          {box.width > 0 && (
            <Stage width={box.width} height={box.height} scaleX={scale} scaleY={scale}>
              <Layer name="overlay">{overlay}</Layer>
            </Stage>
          )}
        </div>
      </div>
      <div className="transport">
        <button type="button" onClick={() => useVideoStore.getState().setPlaying(!playing)} aria-label={playing ? 'Pause' : 'Play'}>
          {playing ? '❚❚' : '►'}
        </button>
        <button type="button" onClick={() => useVideoStore.getState().step(-1)} aria-label="Previous frame">
          ◀
        </button>
        <button type="button" onClick={() => useVideoStore.getState().step(1)} aria-label="Next frame">
          ▶
        </button>
        <span className="position" data-testid="position">
          frame {frame + 1} / {info.frameCount} · {formatTime(info.frameTimes[frame])}
        </span>
      </div>
    </div>
  );
}
