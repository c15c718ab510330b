// Text of a growing token sequence without decoding the whole sequence at every step: tokens are
// decoded in small pending groups, moved into the settled text once they end on a whole character
// (byte-level BPE splits multi-byte characters across tokens, which decode to U+FFFD until complete).

export class TextStream {
  private settled = '';
  private pending: number[] = [];

  constructor(private readonly decode: (ids: number[]) => string) {}

  /** Adds a token; returns the text of every token so far, less a character still incomplete at the end. */
  push(id: number): string {
    this.pending.push(id);
    const tail = this.decode(this.pending);
    if (tail.endsWith('\uFFFD')) return this.settled;
    this.settled += tail;
    this.pending = [];
    return this.settled;
  }

  get text(): string {
    return this.settled + (this.pending.length ? this.decode(this.pending) : '');
  }
}
