// Checked, one-at-a-time access to checkpoint tensors for the graph builders: every read is compared
// with the tensor table derived from the config, so a wrong checkpoint fails with the tensor's name.
import type { Molmo2Config } from '../config.ts';
import { expectedTensors, type Shape } from '../tensors.ts';
import type { WeightReader } from '../weights.ts';

/** What the builders need from a checkpoint; `has` is optional (in-memory test sources lack it). */
export type WeightSource = Pick<WeightReader, 'shape' | 'read'> & Partial<Pick<WeightReader, 'has'>>;

export class CheckedWeights {
  private readonly expected: Map<string, Shape>;

  constructor(
    readonly config: Molmo2Config,
    private readonly source: WeightSource,
  ) {
    this.expected = expectedTensors(config);
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
    const data = await this.source.read(name);
    const size = want.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`tensor ${name}: read ${data.length} values, expected ${size}`);
    return data;
  }
}
