// What the matrix kernels (matvec, matmul, matmul_coop) share: the overrides describing a
// projection of up to four row segments of one packed weight, set by `Projection::overrides`
// (src/projection.rs, which documents each), and the per-segment pick. Composed after
// common.wgsl into those kernels' modules (shader_check::COMPOSED).

// Whether every row and input block starts on a whole vec4 (16-byte loads; else element loads).
// The weight format (DTYPE) and its binding are in weights.wgsl.
override VEC: bool;
override SEGS: u32 = 1u;
override SEG_END0: u32;
override SEG_END1: u32;
override SEG_END2: u32;
override SEG_END3: u32;
override SEG_K0: u32;
override SEG_K1: u32;
override SEG_K2: u32;
override SEG_K3: u32;
override SEG_XOFF0: u32;
override SEG_XOFF1: u32;
override SEG_XOFF2: u32;
override SEG_XOFF3: u32;
override SEG_WOFF0: u32;
override SEG_WOFF1: u32;
override SEG_WOFF2: u32;
override SEG_WOFF3: u32;
override SEG_YOFF0: u32;
override SEG_YOFF1: u32;
override SEG_YOFF2: u32;
override SEG_YOFF3: u32;
override SEG_M0: u32;
override SEG_M1: u32;
override SEG_M2: u32;
override SEG_M3: u32;
override SEG_ACT0: u32;
override SEG_ACT1: u32;
override SEG_ACT2: u32;
override SEG_ACT3: u32;
override BIAS_MASK: u32 = 0u;
override RESIDUAL: bool = false;
override PART_BASE: u32 = 0u;
override PART_ROWS: u32;

// Matrix-matrix kernels (matmul, matmul_coop; set by their launchers): cumulative tiles of
// 128 weight rows of the segments (unused segments end at the last tile).
override SEG_TILE_END0: u32;
override SEG_TILE_END1: u32;
override SEG_TILE_END2: u32;
override SEG_TILE_END3: u32;

// Value a, b, c or d for segment s = 0, 1, 2 or 3.
fn seg_pick(s: u32, a: u32, b: u32, c: u32, d: u32) -> u32 {
    return select(select(select(a, b, s == 1u), c, s == 2u), d, s == 3u);
}
