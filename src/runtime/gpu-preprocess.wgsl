// Molmo2 preprocessing of one source image into pixel_values, the CPU path's math (src/molmo2/image.ts):
// stretch bilinear resize (half-pixel centres, no antialias) on uint8 values, rounded half to even,
// then the normalisation table and the patch layout [crop, patch row·col, (row, col, channel) in patch].
// One invocation per output pixel of one crop. The taps and weights come precomputed from the CPU so
// they are bit-identical; the blends use fma() like PyTorch's x86-64 kernel. The texture binding and
// loadRgb() are prepended by gpu-preprocess.ts (a 2D texture or an external texture).

struct Tap { i0: u32, i1: u32, w0: f32, w1: f32 }
// Tap bases of the view this crop is cut from, and the crop's origin in that resized view.
struct Crop { xBase: u32, yBase: u32, x0: u32, y0: u32 }
struct Params { firstCrop: u32, cropSize: u32, patchSize: u32, pad: u32 }

@group(0) @binding(1) var<storage, read> taps: array<Tap>;
@group(0) @binding(2) var<storage, read> crops: array<Crop>;
@group(0) @binding(3) var<storage, read> lut: array<f32, 768>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

// An 8-bit texel as its integer level (unorm values are exactly u/255, so this recovers u).
fn level(p: vec2u) -> vec3f {
  return round(loadRgb(p) * 255.0);
}

// a·wa + b·wb as fma(a, wa, b·wb): the product b·wb is rounded, the rest fused.
fn blend(a: vec3f, b: vec3f, wa: f32, wb: f32) -> vec3f {
  return fma(a, vec3f(wa), b * wb);
}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let n = params.cropSize;
  if (id.x >= n || id.y >= n) {
    return;
  }
  let crop = crops[id.z];
  let tx = taps[crop.xBase + crop.x0 + id.x];
  let ty = taps[crop.yBase + crop.y0 + id.y];
  let top = blend(level(vec2u(tx.i0, ty.i0)), level(vec2u(tx.i1, ty.i0)), tx.w0, tx.w1);
  let bottom = blend(level(vec2u(tx.i0, ty.i1)), level(vec2u(tx.i1, ty.i1)), tx.w0, tx.w1);
  // WGSL round() is half to even, as torch.round.
  let u = vec3u(clamp(round(blend(top, bottom, ty.w0, ty.w1)), vec3f(0.0), vec3f(255.0)));

  let ps = params.patchSize;
  let side = n / ps;
  let patchLen = ps * ps * 3u;
  let cell = (id.y / ps) * side + id.x / ps;
  let o = (params.firstCrop + id.z) * side * side * patchLen + cell * patchLen + ((id.y % ps) * ps + id.x % ps) * 3u;
  dst[o] = lut[u.x];
  dst[o + 1u] = lut[256u + u.y];
  dst[o + 2u] = lut[512u + u.z];
}
