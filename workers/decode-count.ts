// Counts the frames WebCodecs decodes in this worker, so a diagnostic (and a test) can tell that
// opening a long video decoded a handful of frames rather than all of them. mediabunny looks the
// VideoDecoder constructor up when it creates a decoder, so replacing it once here covers every sink.
let decoded = 0;

export const framesDecoded = (): number => decoded;

export function countDecodedFrames(): void {
  const Native = globalThis.VideoDecoder;
  if (!Native) return;
  class CountingVideoDecoder extends Native {
    constructor(init: VideoDecoderInit) {
      super({
        ...init,
        output: (frame) => {
          decoded++;
          init.output(frame);
        },
      });
    }
  }
  globalThis.VideoDecoder = CountingVideoDecoder;
}
