// Shared fixture for the export tests: a tracking answer on a 30 fps, 640×360 clip sampled at 2 fps.
import { buildResult, type ResultInput } from './result.ts';

export const TRICKY_LABEL = `red, "fast" & 'small' <cars>\nline2`;

export function trackingInput(overrides: Partial<ResultInput> = {}): ResultInput {
  return {
    app: { name: 'molmo2-web', version: '0.1.0' },
    model: { id: 'allenai/Molmo2-4B', dtype: 'q4f16' },
    sampling: { mode: 'uniform_last_frame', fps: 2, maxFrames: 384, maxNewTokens: 2048 },
    video: {
      name: 'street, "day 1".mp4',
      width: 640,
      height: 360,
      durationS: 3,
      fps: 30,
      decodedFrameCount: 90,
      sampledTimesS: [0, 0.5, 1, 1.5, 2, 2.5, 2.9667],
    },
    query: { text: 'Track the "red" cars, please', task: 'track', mode: 'video' },
    // Object 1 is missing at 0.5 s and 1.5 s; object 2 appears at 1.0 s and ends at 2.0 s.
    rawText: `<tracks coords="0.0 1 200 100;1.0 1 250 150 2 600 900;2.0 1 300 200 2 650 950;3.0 1 350 250">${TRICKY_LABEL.replace('<cars>', 'cars')}</tracks>`,
    timingMs: { prefillMs: 812.5, decodeMs: 2400 },
    createdAt: '2026-11-22T12:00:00.000Z',
    ...overrides,
  };
}

export const trackingResult = () => buildResult(trackingInput());
