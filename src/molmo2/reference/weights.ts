// Checked access to a checkpoint's tensors for the reference model: each tensor is read once and its
// shape is compared with the table derived from the config, so a wrong checkpoint fails with a name.
import type { Molmo2Config } from '../config.ts';
import { expectedTensors, type Shape } from '../tensors.ts';
import type { WeightReader } from '../weights.ts';

/** The part of a WeightReader the reference needs. */
export type TensorSource = Pick<WeightReader, 'shape' | 'read'>;

export class Weights {
  private readonly expected: Map<string, Shape>;

  constructor(
    config: Molmo2Config,
    private readonly source: TensorSource,
  ) {
    this.expected = expectedTensors(config);
  }

  async get(name: string): Promise<Float32Array> {
    const want = this.expected.get(name);
    if (!want) throw new Error(`the reference asked for ${name}, which this config does not define`);
    let have: number[];
    try {
      have = this.source.shape(name);
    } catch (e) {
      throw new Error(`checkpoint lacks tensor ${name} (${(e as Error).message})`);
    }
    if (have.length !== want.length || have.some((d, i) => d !== want[i])) {
      throw new Error(`tensor ${name} has shape [${have.join(', ')}], the config needs [${want.join(', ')}]`);
    }
    const data = await this.source.read(name);
    const size = want.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`tensor ${name} read ${data.length} values, expected ${size}`);
    return data;
  }
}
