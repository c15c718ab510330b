// Draws overlay markers with the Canvas 2D API: used to burn the overlay into an exported video, with
// the same shapes, colours, rings, trails and labels as the Konva overlay on the page.
import { markerText, shapeOutline, type Marker } from './overlay-model.ts';

// Drawn in the annotate worker, which has no DOM canvas.
type Ctx = OffscreenCanvasRenderingContext2D;

export const RING_COLOR = '#ffffff';
export const SHADOW_COLOR = 'rgba(0, 0, 0, 0.85)';

export function markerPath(ctx: Ctx, m: Pick<Marker, 'shape' | 'x' | 'y'>, r: number): void {
  const outline = shapeOutline(m.shape, r);
  ctx.beginPath();
  if (!outline) {
    ctx.arc(m.x, m.y, r, 0, 2 * Math.PI);
    return;
  }
  ctx.moveTo(m.x + outline[0], m.y + outline[1]);
  for (let k = 2; k < outline.length; k += 2) ctx.lineTo(m.x + outline[k], m.y + outline[k + 1]);
  ctx.closePath();
}

export function drawMarkers(ctx: Ctx, markers: Marker[], r: number, countBadge?: string): void {
  ctx.save();
  ctx.lineJoin = 'round';
  ctx.lineCap = 'round';
  for (const m of markers) {
    for (const seg of m.trail) {
      ctx.beginPath();
      seg.points.forEach((p, k) => (k === 0 ? ctx.moveTo(p.x, p.y) : ctx.lineTo(p.x, p.y)));
      ctx.setLineDash(seg.dashed ? [r * 0.8, r * 0.8] : []);
      ctx.strokeStyle = m.color;
      ctx.globalAlpha = 0.75;
      ctx.lineWidth = Math.max(1.5, r * 0.35);
      ctx.stroke();
    }
  }
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
  for (const m of markers) {
    markerPath(ctx, m, r);
    ctx.fillStyle = m.color;
    ctx.fill();
    ctx.lineWidth = Math.max(1.5, r * 0.3);
    ctx.strokeStyle = RING_COLOR;
    ctx.stroke();
    const text = markerText(m);
    ctx.font = `${Math.round(r * 1.6)}px system-ui, sans-serif`;
    ctx.textBaseline = 'bottom';
    ctx.lineWidth = Math.max(2, r * 0.4);
    ctx.strokeStyle = SHADOW_COLOR;
    ctx.strokeText(text, m.x + r * 1.4, m.y - r * 0.6);
    ctx.fillStyle = '#ffffff';
    ctx.fillText(text, m.x + r * 1.4, m.y - r * 0.6);
  }
  if (countBadge) {
    ctx.font = `bold ${Math.round(r * 2)}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';
    const w = ctx.measureText(countBadge).width;
    ctx.fillStyle = SHADOW_COLOR;
    ctx.fillRect(r, r, w + r * 1.6, r * 3);
    ctx.fillStyle = '#ffffff';
    ctx.fillText(countBadge, r * 1.8, r * 1.5);
  }
  ctx.restore();
}
