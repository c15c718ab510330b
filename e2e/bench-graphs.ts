// A one-node ONNX graph for the GPU preprocessing test and benchmark: pixel_values → Neg → o, so a GPU
// tensor made by the preprocessing pass goes through a real onnxruntime-web WebGPU session.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export function negGraph(): Uint8Array {
  const F32 = onnx.TensorProto.DataType.FLOAT;
  const dims = [{ dimParam: 'n_crops' }, { dimValue: 729 }, { dimValue: 588 }];
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'molmo2-web-tests',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'neg',
      node: [{ opType: 'Neg', input: ['pixel_values'], output: ['o'] }],
      input: [{ name: 'pixel_values', type: { tensorType: { elemType: F32, shape: { dim: dims } } } }],
      output: [{ name: 'o', type: { tensorType: { elemType: F32, shape: { dim: dims } } } }],
    },
  }).finish();
}
