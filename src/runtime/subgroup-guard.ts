// Hides an adapter's subgroup features from onnxruntime-web.
//
// Why: onnxruntime-web 1.30 builds a subgroup variant of its FlashAttention prefill shader
// (MultiHeadAttention / GroupQueryAttention with ≥ 32 query rows) that reads keys through
// subgroupShuffle assuming at least 8 lanes. On adapters with narrower subgroups (SwiftShader has 4)
// it returns wrong attention. Without the subgroup features ORT builds its shared-memory variant,
// which is correct everywhere.
//
// How: onnxruntime asks the adapter for its features and requests a device with them; both go through
// GPUAdapter.prototype, which this patches (only the `subgroups*` features are filtered). It must run
// before onnxruntime creates its device, i.e. before the first WebGPU session.

/** Narrowest subgroup onnxruntime's subgroup kernels handle correctly. */
export const MIN_SAFE_SUBGROUP_SIZE = 8;

const isSubgroupFeature = (f: string) => f.startsWith('subgroup');
let installed = false;

/** True when this adapter's subgroups are too narrow for onnxruntime's subgroup kernels. */
export function needsSubgroupGuard(adapter: GPUAdapter, features: ReadonlySet<string> = adapter.features): boolean {
  if (![...features].some(isSubgroupFeature)) return false;
  const min = adapter.info?.subgroupMinSize;
  return typeof min === 'number' && min > 0 && min < MIN_SAFE_SUBGROUP_SIZE;
}

export function subgroupGuardInstalled(): boolean {
  return installed;
}

/** Patches GPUAdapter.prototype so no adapter reports or grants subgroup features. Idempotent. */
export function installSubgroupGuard(): void {
  if (installed) return;
  const proto = GPUAdapter.prototype;
  const featuresGetter = Object.getOwnPropertyDescriptor(proto, 'features')?.get;
  if (!featuresGetter) throw new Error('GPUAdapter.features is not a getter in this browser; cannot hide subgroup features');
  const requestDevice = proto.requestDevice;
  Object.defineProperty(proto, 'features', {
    configurable: true,
    enumerable: true,
    get(this: GPUAdapter) {
      // A GPUSupportedFeatures is a read-only set-like; a Set offers the same read interface.
      return new Set([...(featuresGetter.call(this) as GPUSupportedFeatures)].filter((f) => !isSubgroupFeature(f))) as unknown as GPUSupportedFeatures;
    },
  });
  proto.requestDevice = function (this: GPUAdapter, descriptor?: GPUDeviceDescriptor) {
    const requiredFeatures = [...(descriptor?.requiredFeatures ?? [])].filter((f) => !isSubgroupFeature(f));
    return requestDevice.call(this, { ...descriptor, requiredFeatures });
  };
  installed = true;
}
