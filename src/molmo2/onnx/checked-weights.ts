// Checked, one-at-a-time access to checkpoint tensors for the graph builders: every read is compared
// with the tensor table derived from the config, so a wrong checkpoint fails with the tensor's name.
import type { Molmo2Config } from '../config.ts';
import { expectedTensors, type Shape } from '../tensors.ts';
import type { WeightReader } from '../weights.ts';
import { InlineEncoder, type BlockEncoder, type WeightRef } from './encode.ts';

/** What the builders need from a checkpoint; `has` is optional (in-memory test sources lack it). */
export type WeightSource = Pick<WeightReader, 'shape' | 'read'> & Partial<Pick<WeightReader, 'has' | 'readRows'>>;

export class CheckedWeights {
  private readonly expected: Map<string, Shape>;
  /** Runs the encoding jobs of refs (default: in this thread, reading row blocks when the source can). */
  readonly encoder: BlockEncoder;

  constructor(
    readonly config: Molmo2Config,
    private readonly source: WeightSource,
    encoder?: BlockEncoder,
  ) {
    this.expected = expectedTensors(config);
    const rows = source.readRows ? (name: string, from: number, to: number) => source.readRows!(name, from, to) : undefined;
    this.encoder = encoder ?? new InlineEncoder((name) => this.get(name), rows);
  }

  /** True when the checkpoint holds `name`. */
  has(name: string): boolean {
    if (this.source.has) return this.source.has(name);
    try {
      this.source.shape(name);
      return true;
    } catch {
      return false;
    }
  }

  /** Reads `name` as float32 after checking its shape against the config's table. */
  async get(name: string): Promise<Float32Array> {
    const want = this.check(name);
    const data = await this.source.read(name);
    const size = want.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`tensor ${name}: read ${data.length} values, expected ${size}`);
    return data;
  }

  /**
   * A 2-D tensor (or rows [from, to) of it) to be encoded block by block through `encoder`, after
   * checking its shape; nothing is read yet.
   */
  ref(name: string, from = 0, to?: number): WeightRef {
    const shape = this.check(name);
    if (shape.length !== 2) throw new Error(`tensor ${name} has shape [${shape.join(', ')}]; only matrices are streamed`);
    const end = to ?? shape[0];
    if (!(0 <= from && from < end && end <= shape[0])) throw new Error(`tensor ${name}: rows [${from}, ${end}) are outside its ${shape[0]} rows`);
    return { encoder: this.encoder, tensor: name, rowFrom: from, rows: end - from, cols: shape[1] };
  }

  /** The config's shape of `name`, after checking the checkpoint's against it. */
  private check(name: string): Shape {
    const want = this.expected.get(name);
    if (!want) throw new Error(`the graph builder asked for ${name}, which this config does not define`);
    let have: number[];
    try {
      have = this.source.shape(name);
    } catch (e) {
      throw new Error(`the checkpoint lacks tensor ${name} (${(e as Error).message})`);
    }
    if (have.length !== want.length || have.some((d, i) => d !== want[i])) {
      throw new Error(`tensor ${name} has shape [${have.join(', ')}]; the config needs [${want.join(', ')}]`);
    }
    return want;
  }
}
