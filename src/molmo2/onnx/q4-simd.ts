// Symmetric int4 quantization (quant.ts's default: block 32, scale = first value of largest
// magnitude / −8, code = clamp(Math.round(w · (1/scale)) + 8, 0, 15)) as a WebAssembly SIMD kernel:
// the same IEEE operations in the same order, four values at a time, so the bytes are identical to
// the JavaScript kernel's. Math.round(x) is computed exactly as floor(x) + (x − floor(x) ≥ 0.5):
// x − floor(x) is exact for finite x. Blocks holding NaN or ±∞ are left to the JavaScript kernel.
// Platform-free (WebAssembly is part of every JavaScript runtime this project targets); the module
// is assembled here from its instructions, so there is no binary to build or ship.
import { quantizeSymmetricBlock } from './quant.ts';

/** The kernel bound to one WebAssembly instance; values go in through `input()`. */
export interface Q4Simd {
  /** A float32 view of `count` input values inside the kernel's memory (valid until the next call). */
  input(count: number): Float32Array;
  /**
   * Quantizes the `rows × K` values last written through input() and returns
   * views of the packed codes and the scales (float16 bits or float32) inside the kernel's memory.
   */
  quantize(rows: number, K: number, scaleType: 'float32' | 'float16'): { packed: Uint8Array; scales: Uint8Array };
}

// ---- a minimal WebAssembly assembler (only what the kernel uses) ----

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const f64Bytes = (v: number) => Array.from(new Uint8Array(Float64Array.of(v).buffer));
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];

const V128 = 0x7b;
const I32 = 0x7f;
const F32 = 0x7d;
const F64 = 0x7c;

/** Instructions; `s(op)` is a SIMD instruction (0xfd prefix). */
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  else: [0x05],
  end: [0x0b],
  br: (d: number) => [0x0c, ...uleb(d)],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  f64: (v: number) => [0x44, ...f64Bytes(v)],
  i32Load: (offset = 0) => [0x28, 2, ...uleb(offset)],
  f32Load: (offset = 0) => [0x2a, 2, ...uleb(offset)],
  i32Store: (offset = 0) => [0x36, 2, ...uleb(offset)],
  f32Store: (offset = 0) => [0x38, 2, ...uleb(offset)],
  f64Load: (offset = 0) => [0x2b, 3, ...uleb(offset)],
  f64Store: (offset = 0) => [0x39, 3, ...uleb(offset)],
  i32Store16: (offset = 0) => [0x3b, 1, ...uleb(offset)],
  i32Eqz: [0x45],
  i32Eq: [0x46],
  i32Ne: [0x47],
  i32LtU: [0x49],
  i32GeU: [0x4f],
  i32GtU: [0x4b],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32Or: [0x72],
  i32Shl: [0x74],
  i32ShrU: [0x76],
  i32Ctz: [0x68],
  f32Eq: [0x5b],
  f32Ne: [0x5c],
  f64Eq: [0x61],
  f64Div: [0xa3],
  f64Mul: [0xa2],
  f64Copysign: [0xa6],
  f32DemoteF64: [0xb6],
  f64PromoteF32: [0xbb],
  f64ConvertI32S: [0xb7],
  i32ReinterpretF32: [0xbc],
  f32ReinterpretI32: [0xbe],
  select: [0x1b],
  v128Load: (offset = 0) => [0xfd, ...uleb(0x00), 4, ...uleb(offset)],
  v128Store: (offset = 0) => [0xfd, ...uleb(0x0b), 4, ...uleb(offset)],
  shuffle: (lanes: number[]) => [0xfd, ...uleb(0x0d), ...lanes],
  i16x8Splat: [0xfd, ...uleb(0x10)],
  i32x4Splat: [0xfd, ...uleb(0x11)],
  f32x4Splat: [0xfd, ...uleb(0x13)],
  f64x2Splat: [0xfd, ...uleb(0x14)],
  f32x4ExtractLane: (l: number) => [0xfd, ...uleb(0x1f), l],
  f32x4Eq: [0xfd, ...uleb(0x41)],
  f64x2Eq: [0xfd, ...uleb(0x47)],
  v128AnyTrue: [0xfd, ...uleb(0x53)],
  i8x16Bitmask: [0xfd, ...uleb(0x64)],
  i8x16NarrowI16x8S: [0xfd, ...uleb(0x65)],
  i16x8NarrowI32x4S: [0xfd, ...uleb(0x85)],
  f64x2ConvertLowI32x4S: [0xfd, ...uleb(0xfe)],
  f64x2Ge: [0xfd, ...uleb(0x4c)],
  v128And: [0xfd, ...uleb(0x4e)],
  v128Or: [0xfd, ...uleb(0x50)],
  v128Bitselect: [0xfd, ...uleb(0x52)],
  f64x2PromoteLowF32x4: [0xfd, ...uleb(0x5f)],
  i8x16NarrowI16x8U: [0xfd, ...uleb(0x66)],
  f64x2Floor: [0xfd, ...uleb(0x75)],
  i16x8NarrowI32x4U: [0xfd, ...uleb(0x86)],
  i16x8ShrU: [0xfd, ...uleb(0x8d)],
  i32x4Bitmask: [0xfd, ...uleb(0xa4)],
  i32x4Add: [0xfd, ...uleb(0xae)],
  i32x4MinS: [0xfd, ...uleb(0xb6)],
  i32x4MaxS: [0xfd, ...uleb(0xb8)],
  f32x4Abs: [0xfd, ...uleb(0xe0)],
  f32x4Max: [0xfd, ...uleb(0xe9)],
  f64x2Add: [0xfd, ...uleb(0xf0)],
  f64x2Sub: [0xfd, ...uleb(0xf1)],
  f64x2Mul: [0xfd, ...uleb(0xf2)],
  i32x4TruncSatF64x2SZero: [0xfd, ...uleb(0xfc)],
};

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

/**
 * q4(src, rows, K, packed, scales, f16, fallback, tmp) → number of fallback blocks, for a row-major
 * [rows, K] float32 matrix at `src`. Block b of row n (nb = ⌈K/32⌉ blocks a row) writes 16 bytes at
 * packed + 16(n·nb + b) and its scale at scales + (2 or 4)(n·nb + b). Only whole blocks are done: a
 * row's last partial block is left to the caller, and so is a block whose largest magnitude is NaN
 * or ∞ (its index n·nb + b is written at fallback + 4·count). `tmp` holds 8 bytes per block of a group.
 */
export function q4SimdModuleBytes(): Uint8Array<ArrayBuffer> {
  let next = 0;
  const local = (n = 1) => {
    const first = next;
    next += n;
    return n === 1 ? first : range(first, first + n);
  };
  const [SRC, ROWS, K, PACKED, SCALES, F16, FB, TMP] = local(8) as number[];
  const i32Locals = next;
  const [B, P, IDX, BITS, NFB, ABS, MANT, SHIFT, REST, HALF, C0, C1] = local(12) as number[];
  const [ROW, RSRC, RPACKED, RSCALES, RBASE, N, NB] = local(7) as number[]; // N: whole blocks per row
  const f32Locals = next;
  const [M, EXT] = local(2) as number[];
  const f64Locals = next;
  const [S, SCALE, INV] = local(3) as number[];
  const v128Locals = next;
  const V = local(8) as number[]; // the block's values
  const A = local(8) as number[]; // their magnitudes
  const C = local(8) as number[]; // codes, four per vector
  const [T, U, X, LO, HI, INVV, FLAG] = local(7) as number[];
  const [ONE, POINT5, EIGHT5, I0, I8, I15, NIBBLE] = local(7) as number[];
  const locals = [
    [f32Locals - i32Locals, I32],
    [f64Locals - f32Locals, F32],
    [v128Locals - f64Locals, F64],
    [next - v128Locals, V128],
  ].map(([n, t]) => [...uleb(n), t]);

  const hiToLo = [...range(8, 16), ...range(0, 8)];
  const lane1ToLo = [...range(4, 8), ...range(0, 4), ...range(8, 16)];
  const low2Then2 = [...range(0, 8), ...range(16, 24)];

  const body: number[] = [];
  const emit = (...parts: (number | number[])[]) => {
    for (const p of parts) if (Array.isArray(p)) body.push(...p);
    else body.push(p);
  };

  for (const [l, v] of [
    [ONE, 1],
    [POINT5, 0.5],
    [EIGHT5, 8.5],
  ])
    emit(op.f64(v), op.f64x2Splat, op.set(l));
  for (const [l, v] of [
    [I0, 0],
    [I8, 8],
    [I15, 15],
  ])
    emit(op.i32(v), op.i32x4Splat, op.set(l));
  emit(op.i32(0x0f), op.i16x8Splat, op.set(NIBBLE));

  // Blocks go in groups of GROUP: first every block's scale (the scan → scale → 1/scale chain of
  // several blocks overlaps), then every block's codes, with the group's values still in cache.
  const GROUP = 64;
  const load = () => {
    emit(op.get(RSRC), op.get(B), op.i32(128), op.i32Mul, op.i32Add, op.set(P));
    for (let k = 0; k < 8; k++) emit(op.get(P), op.v128Load(16 * k), op.set(V[k]));
  };
  const forBlocks = (each: () => void) => {
    emit(op.get(C0), op.set(B), op.block, op.loop);
    emit(op.get(B), op.get(C1), op.i32GeU, op.brIf(1));
    each();
    emit(op.get(B), op.i32(1), op.i32Add, op.set(B), op.br(0), op.end, op.end);
  };
  const invAt = () => emit(op.get(TMP), op.get(B), op.get(C0), op.i32Sub, op.i32(8), op.i32Mul, op.i32Add);

  emit(op.i32(0), op.set(NFB), op.i32(0), op.set(ROW));
  emit(op.get(K), op.i32(5), op.i32ShrU, op.set(N), op.get(K), op.i32(31), op.i32Add, op.i32(5), op.i32ShrU, op.set(NB));
  emit(op.block, op.loop); // for each row
  emit(op.get(ROW), op.get(ROWS), op.i32GeU, op.brIf(1));
  emit(op.get(SRC), op.get(ROW), op.get(K), op.i32Mul, op.i32(4), op.i32Mul, op.i32Add, op.set(RSRC));
  emit(op.get(ROW), op.get(NB), op.i32Mul, op.tee(RBASE), op.i32(16), op.i32Mul, op.get(PACKED), op.i32Add, op.set(RPACKED));
  emit(op.get(SCALES), op.get(RBASE), op.i32(2), op.i32(4), op.get(F16), op.select, op.i32Mul, op.i32Add, op.set(RSCALES));
  emit(op.i32(0), op.set(C0));
  emit(op.block, op.loop); // for each group [c0, c1) of the row's whole blocks
  emit(op.get(C0), op.get(N), op.i32GeU, op.brIf(1));
  emit(op.get(N), op.get(C0), op.i32(GROUP), op.i32Add, op.tee(C1), op.get(C1), op.get(N), op.i32GtU, op.select, op.set(C1));

  forBlocks(() => {
    load();
    for (let k = 0; k < 8; k++) emit(op.get(V[k]), op.f32x4Abs, op.set(A[k]));
    // Largest magnitude (NaN-propagating max: a NaN anywhere makes it NaN).
    emit(op.get(A[0]), op.get(A[1]), op.f32x4Max, op.get(A[2]), op.get(A[3]), op.f32x4Max, op.f32x4Max);
    emit(op.get(A[4]), op.get(A[5]), op.f32x4Max, op.get(A[6]), op.get(A[7]), op.f32x4Max, op.f32x4Max, op.f32x4Max);
    emit(op.tee(T), op.get(T), op.get(T), op.shuffle(hiToLo), op.f32x4Max, op.tee(T), op.get(T), op.get(T), op.shuffle(lane1ToLo), op.f32x4Max, op.f32x4ExtractLane(0), op.set(M));

    // NaN or ∞: leave the block to the JavaScript kernel (its inverse scale NaN marks it for the codes pass).
    emit(op.get(M), op.get(M), op.f32Ne, op.get(M), op.i32ReinterpretF32, op.i32(0x7f800000), op.i32Eq, op.i32Or, op.if);
    emit(op.get(FB), op.get(NFB), op.i32(4), op.i32Mul, op.i32Add, op.get(RBASE), op.get(B), op.i32Add, op.i32Store(), op.get(NFB), op.i32(1), op.i32Add, op.set(NFB));
    invAt();
    emit(op.f64(NaN), op.f64Store());
    emit(op.else);

    // The first value of that magnitude (its sign matters): the lowest set bit of the 32 lanes'
    // equality mask, gathered without branches; 0 when the block is all zeros.
    emit(op.get(M), op.f32x4Splat, op.set(U));
    const eq16 = (k: number) => emit(op.get(A[k]), op.get(U), op.f32x4Eq, op.get(A[k + 1]), op.get(U), op.f32x4Eq, op.i16x8NarrowI32x4S);
    const eq8 = (k: number) => {
      eq16(k);
      eq16(k + 2);
      emit(op.i8x16NarrowI16x8S, op.i8x16Bitmask);
    };
    eq8(0);
    eq8(4);
    emit(op.i32(16), op.i32Shl, op.i32Or, op.i32Ctz, op.set(IDX));
    emit(op.get(P), op.get(IDX), op.i32(31), op.i32And, op.i32(4), op.i32Mul, op.i32Add, op.f32Load(), op.f64PromoteF32);
    emit(op.f64(0), op.get(M), op.i32ReinterpretF32, op.select, op.set(S)); // ext (m ≠ 0) or +0

    // scale = stored(ext / −8) (× −0.125 is the same exactly rounded quotient); inv = scale == 0 ? 0 : 1 / scale.
    emit(op.get(S), op.f64(-0.125), op.f64Mul, op.set(S));
    emit(op.get(F16), op.if);
    emitFloat16Scale(emit, { S, SCALE, SCALES: RSCALES, B, BITS, ABS, MANT, SHIFT, REST, HALF });
    emit(op.else);
    emit(op.get(RSCALES), op.get(B), op.i32(4), op.i32Mul, op.i32Add, op.get(S), op.f32DemoteF64, op.f32Store());
    emit(op.get(S), op.f32DemoteF64, op.f64PromoteF32, op.set(SCALE));
    emit(op.end);
    invAt();
    emit(op.f64(0), op.f64(1), op.get(SCALE), op.f64Div, op.get(SCALE), op.f64(0), op.f64Eq, op.select, op.f64Store());
    emit(op.end);
  });

  forBlocks(() => {
    invAt();
    emit(op.f64Load(), op.tee(INV), op.get(INV), op.f64Eq, op.if); // not a fallback block
    load();
    emit(op.get(INV), op.f64x2Splat, op.set(INVV));
      // Codes, fast: t = x + 8.5, code = trunc(t) clamped to [0, 15]. That is floor(x + 8.5) =
      // Math.round(x) + 8 unless x + 8.5 rounded to an integer: then FLAG is set and the block is redone
      // exactly with r = floor(x), +1 where x − r ≥ 0.5.
      emit(op.i32(0), op.i32x4Splat, op.set(FLAG));
      const halves = (k: number, each: () => void) => {
        emit(op.get(V[k]), op.f64x2PromoteLowF32x4, op.get(INVV), op.f64x2Mul, op.set(X));
        each();
        emit(op.set(LO));
        emit(op.get(V[k]), op.get(V[k]), op.shuffle(hiToLo), op.f64x2PromoteLowF32x4, op.get(INVV), op.f64x2Mul, op.set(X));
        each();
        emit(op.set(HI), op.get(LO), op.get(HI), op.shuffle(low2Then2));
      };
      const clamp = () => emit(op.get(I0), op.i32x4MaxS, op.get(I15), op.i32x4MinS);
      for (let k = 0; k < 8; k++) {
        halves(k, () => {
          emit(op.get(X), op.get(EIGHT5), op.f64x2Add, op.tee(T), op.i32x4TruncSatF64x2SZero, op.tee(U));
          emit(op.f64x2ConvertLowI32x4S, op.get(T), op.f64x2Eq, op.get(FLAG), op.v128Or, op.set(FLAG), op.get(U));
        });
        clamp();
        emit(op.set(C[k]));
      }
      emit(op.get(FLAG), op.v128AnyTrue, op.if);
      for (let k = 0; k < 8; k++) {
        halves(k, () => {
          emit(op.get(X), op.f64x2Floor, op.tee(U), op.get(ONE), op.f64x2Add, op.get(U)); // r + 1, r
          emit(op.get(X), op.get(U), op.f64x2Sub, op.get(POINT5), op.f64x2Ge, op.v128Bitselect, op.i32x4TruncSatF64x2SZero); // x − r ≥ 0.5
        });
        emit(op.get(I8), op.i32x4Add);
        clamp();
        emit(op.set(C[k]));
      }
      emit(op.end);

      // 32 codes → 16 bytes, two per byte, low nibble first: an i16 lane c0 | c1 << 8 becomes c0 | c1 << 4.
      const pairs = (a: number) => {
        emit(op.get(C[a]), op.get(C[a + 1]), op.i16x8NarrowI32x4U, op.get(C[a + 2]), op.get(C[a + 3]), op.i16x8NarrowI32x4U, op.i8x16NarrowI16x8U, op.tee(T));
        emit(op.get(NIBBLE), op.v128And, op.get(T), op.i32(4), op.i16x8ShrU, op.v128Or);
      };
      emit(op.get(RPACKED), op.get(B), op.i32(16), op.i32Mul, op.i32Add);
      pairs(0);
      pairs(4);
      emit(op.i8x16NarrowI16x8U, op.v128Store());
    emit(op.end);
  });

  emit(op.get(C1), op.set(C0), op.br(0));
  emit(op.end, op.end);
  emit(op.get(ROW), op.i32(1), op.i32Add, op.set(ROW), op.br(0));
  emit(op.end, op.end);
  emit(op.get(NFB));

  const code = [...vec(locals), ...body, ...op.end];
  const params = [I32, I32, I32, I32, I32, I32, I32, I32];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, ...vec(params.map((t) => [t])), ...vec([[I32]])]])), // type: (i32 ×8) → i32
    ...section(3, vec([[0]])), // function 0 has type 0
    ...section(5, vec([[0x00, 1]])), // one memory, at least 1 page
    ...section(7, vec([[...vec([...'q4'].map((c) => [c.charCodeAt(0)])), 0x00, 0], [...vec([...'mem'].map((c) => [c.charCodeAt(0)])), 0x02, 0]])),
    ...section(10, vec([[...uleb(code.length), ...code]])),
  ]);
}

/**
 * The float16 scale, exactly as float16Bits(s) then float16Value(bits): s rounded to float32, then
 * to binary16 (add-and-shift for normals, the subnormal shift, ±0, ∞), stored; its value widened.
 */
function emitFloat16Scale(
  emit: (...parts: (number | number[])[]) => void,
  l: { S: number; SCALE: number; SCALES: number; B: number; BITS: number; ABS: number; MANT: number; SHIFT: number; REST: number; HALF: number },
): void {
  const { S, SCALE, SCALES, B, BITS, ABS, MANT, SHIFT, REST, HALF } = l;
  // bits = float32 pattern of s; ABS = bits & 0x7fffffff; BITS := sign
  emit(op.get(S), op.f32DemoteF64, op.i32ReinterpretF32, op.tee(BITS), op.i32(0x7fffffff), op.i32And, op.set(ABS));
  emit(op.get(BITS), op.i32(16), op.i32ShrU, op.i32(0x8000), op.i32And, op.set(BITS));
  emit(op.get(ABS), op.i32(0x38800000), op.i32GeU, op.if);
  {
    emit(op.get(ABS), op.i32(0x47800000), op.i32LtU, op.if);
    emit(op.get(BITS), op.get(ABS), op.i32(0xfff), op.i32Add, op.get(ABS), op.i32(13), op.i32ShrU, op.i32(1), op.i32And, op.i32Add, op.i32(0x38000000), op.i32Sub, op.i32(13), op.i32ShrU, op.i32Or, op.set(BITS));
    emit(op.else);
    // Finite s only (the block's values are finite): overflow to ±∞.
    emit(op.get(BITS), op.i32(0x7c00), op.i32Or, op.set(BITS));
    emit(op.end);
  }
  emit(op.else);
  {
    emit(op.get(ABS), op.i32(0x33000000), op.i32GeU, op.if); // else ±0: BITS is the sign already
    emit(op.get(ABS), op.i32(0x7fffff), op.i32And, op.i32(0x800000), op.i32Or, op.set(MANT));
    emit(op.i32(126), op.get(ABS), op.i32(23), op.i32ShrU, op.i32Sub, op.set(SHIFT));
    emit(op.i32(1), op.get(SHIFT), op.i32(1), op.i32Sub, op.i32Shl, op.set(HALF));
    emit(op.get(MANT), op.i32(1), op.get(SHIFT), op.i32Shl, op.i32(1), op.i32Sub, op.i32And, op.set(REST));
    emit(op.get(MANT), op.get(SHIFT), op.i32ShrU, op.set(MANT));
    // m += rest > half || (rest == half && m & 1)  ⇔  rest + (m & 1) > half
    emit(op.get(MANT), op.get(REST), op.get(MANT), op.i32(1), op.i32And, op.i32Add, op.get(HALF), op.i32GtU, op.i32Add, op.set(MANT));
    emit(op.get(BITS), op.get(MANT), op.i32Or, op.set(BITS));
    emit(op.end);
  }
  emit(op.end);
  emit(op.get(SCALES), op.get(B), op.i32(2), op.i32Mul, op.i32Add, op.get(BITS), op.i32Store16());
  // Value: subnormal (exp 0) = ±mant · 2^-24; otherwise the float32 with the exponent rebiased.
  emit(op.get(BITS), op.i32(10), op.i32ShrU, op.i32(0x1f), op.i32And, op.i32Eqz, op.if);
  emit(op.get(BITS), op.i32(0x3ff), op.i32And, op.f64ConvertI32S, op.f64(2 ** -24), op.f64Mul, op.f64(-1), op.f64(1), op.get(BITS), op.i32(0x8000), op.i32And, op.select, op.f64Copysign, op.set(SCALE));
  emit(op.else);
  emit(op.get(BITS), op.i32(0x8000), op.i32And, op.i32(16), op.i32Shl);
  emit(op.get(BITS), op.i32(10), op.i32ShrU, op.i32(0x1f), op.i32And, op.tee(MANT), op.i32(112), op.i32Add, op.i32(0xff), op.get(MANT), op.i32(0x1f), op.i32Ne, op.select, op.i32(23), op.i32Shl, op.i32Or);
  emit(op.get(BITS), op.i32(0x3ff), op.i32And, op.i32(13), op.i32Shl, op.i32Or, op.f32ReinterpretI32, op.f64PromoteF32, op.set(SCALE));
  emit(op.end);
}

let compiled: WebAssembly.Module | null | undefined;

function module(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = typeof WebAssembly === 'object' ? new WebAssembly.Module(q4SimdModuleBytes()) : null;
    } catch {
      compiled = null; // no SIMD in this runtime
    }
  }
  return compiled;
}

/** A new kernel instance (own memory), or undefined where WebAssembly SIMD is unavailable. */
export function q4Simd(): Q4Simd | undefined {
  const mod = module();
  if (!mod) return undefined;
  const instance = new WebAssembly.Instance(mod);
  const q4 = instance.exports.q4 as (src: number, rows: number, K: number, packed: number, scales: number, f16: number, fb: number, tmp: number) => number;
  const memory = instance.exports.mem as WebAssembly.Memory;
  let count = 0;
  const reserve = (bytes: number) => {
    const have = memory.buffer.byteLength;
    if (bytes > have) memory.grow(Math.ceil((bytes - have) / 65536));
  };
  return {
    input(n) {
      // Room for the values and for the largest outputs after them (see quantize).
      // Room for the values and for the outputs of the usual shapes after them (quantize() grows it if needed).
      reserve(n * 4 + Math.ceil(n / 32) * (16 + 4 + 4) + 64 * 8 + 64);
      count = n;
      return new Float32Array(memory.buffer, 0, n);
    },
    quantize(rows, K, scaleType) {
      const n = rows * K;
      if (n > count) throw new Error(`q4Simd: ${n} values, but input() holds ${count}`);
      const nb = Math.ceil(K / 32);
      const blocks = rows * nb;
      const packedAt = n * 4;
      const scalesAt = packedAt + blocks * 16;
      const scaleBytes = scaleType === 'float16' ? 2 : 4;
      const fbAt = Math.ceil((scalesAt + blocks * scaleBytes) / 8) * 8;
      const tmpAt = fbAt + blocks * 4 + 8;
      reserve(tmpAt + 64 * 8);
      const f16 = scaleType === 'float16';
      const fallbacks = q4(0, rows, K, packedAt, scalesAt, f16 ? 1 : 0, fbAt, tmpAt);
      const buf = memory.buffer;
      const packed = new Uint8Array(buf, packedAt, blocks * 16);
      const scales = new Uint8Array(buf, scalesAt, blocks * scaleBytes);
      const tail = K % 32;
      if (fallbacks > 0 || tail > 0) {
        const values = new Float32Array(buf, 0, n);
        const s = f16 ? new Uint16Array(buf, scalesAt, blocks) : new Float32Array(buf, scalesAt, blocks);
        for (const g of new Int32Array(buf, fbAt, fallbacks)) {
          const row = Math.floor(g / nb);
          quantizeSymmetricBlock(values, row * K + (g - row * nb) * 32, 32, 32, f16, packed, g * 16, s, g);
        }
        if (tail > 0) for (let row = 0, g = nb - 1; row < rows; row++, g += nb) quantizeSymmetricBlock(values, row * K + K - tail, tail, 32, f16, packed, g * 16, s, g);
      }
      return { packed, scales };
    },
  };
}
