// A model file `<dir>/<stem>.onnx`: the graph being built plus the external-data chunks of its weights.
import { ExternalData, type OpenChunk, type WriteFile } from './external-data.ts';
import { Graph } from './graph.ts';

/** File names of a written graph, relative to the model folder (cf. manifest GraphFiles). */
export interface WrittenGraph {
  model: string;
  externalData: string[];
}

/**
 * Graph plus its external-data writer for a model file `<dir>/<stem>.onnx`; `finish()` flushes the
 * last chunk and writes the graph.
 */
export class ModelFile {
  readonly graph: Graph;
  readonly external: ExternalData;

  constructor(
    readonly dir: string,
    readonly stem: string,
    private readonly write: WriteFile,
    opts: { maxChunkBytes?: number; opset?: number; open?: OpenChunk } = {},
  ) {
    this.external = new ExternalData(dir, stem, write, opts.maxChunkBytes, opts.open);
    this.graph = new Graph(stem, { external: this.external, opset: opts.opset });
  }

  async finish(): Promise<WrittenGraph> {
    await this.external.flush();
    const model = this.dir ? `${this.dir}/${this.stem}.onnx` : `${this.stem}.onnx`;
    await this.write(model, this.graph.toModelBytes());
    return { model, externalData: this.external.paths() };
  }
}
