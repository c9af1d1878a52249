// AVX2 + FMA kernels for the Dense op on panel-packed weights (layout: sgemm_packed.h).
//
// M >= 2: BLIS-style register tiles of up to 6 rows x 16 columns (one panel): 12 ymm
// accumulators, two W loads (one cache line) and six X broadcasts per k, FMA-bound (about 95% of
// peak with the weights in L2). Rows are split evenly into tiles (M = 16 -> 6 + 5 + 5, M = 7 ->
// 4 + 3), so no tile is left with one or two rows and too few independent FMA chains. All tiles
// of a block of X rows run over a panel before the next one, so each weight byte comes from
// memory once per block (the whole X at small M, X blocks are sized for L2), and while they do
// they prefetch the next panel, spread evenly over the tiles: without that the L3 stream of the
// 6 MB weights stalled the first tile of each panel (M = 16, 784 x 2048: 790 -> 540 us). Large K
// runs in chunks of at most 1024 (K-blocking), the sums going back through y.
// M == 1: a GEMV over four panels at a time (four weight streams, eight FMA chains).
//
// Bias is the accumulators' initial value; Relu / LeakyRelu / Clip are applied in registers before
// the store; Sigmoid / Tanh by Activation::Apply on the tile right after it is stored (still in
// L1). Headers come before the pragma so that none of their inline functions is compiled for AVX2.
#if defined(__x86_64__)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "inference/kernels/sgemm_packed.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace edgeinfer::dense_avx2 {

namespace {

constexpr int64_t kNr = kDensePanelWidth;  // 16 columns: two ymm
constexpr int kMr = 6;
// Bytes of X a row block may take: it is re-read for every panel and should stay in L2 (512 KB on
// Zen 2/3, 256 KB-1 MB elsewhere) next to the panel being read.
constexpr int64_t kXBlockBytes = 160 * 1024;
// Longest chunk of K a tile runs over before its sums go back to y (K-blocking): a panel chunk
// (64 KB at most) and the X block then stay in L2 while all row tiles read them. Measured at
// M = 16: 1.5-1.8x faster for K = 4096-16384, no change at K = 2048 (2 chunks), K <= 1024 is
// one chunk.
constexpr int64_t kMaxKc = 1024;

#define EI_ALWAYS_INLINE inline __attribute__((always_inline))

// How the fused activation is applied: in registers, or by Activation::Apply after the store.
struct Epilogue {
  enum Mode { kNone, kRelu, kLeakyRelu, kClip, kAfterStore };
  Mode mode = kNone;
  __m256 alpha, lo, hi;
  const Activation* act = nullptr;

  explicit Epilogue(const Activation* a) : act(a) {
    alpha = lo = hi = _mm256_setzero_ps();
    if (a == nullptr) return;
    switch (a->kind) {
      case Activation::Kind::kNone:
        break;
      case Activation::Kind::kRelu:
        mode = kRelu;
        break;
      case Activation::Kind::kLeakyRelu:
        mode = kLeakyRelu;
        alpha = _mm256_set1_ps(a->alpha);
        break;
      case Activation::Kind::kClip:
        mode = kClip;
        lo = _mm256_set1_ps(a->min);
        hi = _mm256_set1_ps(a->max);
        break;
      default:
        mode = kAfterStore;
        break;
    }
  }

  // Same results as Activation::Apply, NaN and -0 included: max_ps(a, b) is (a > b ? a : b),
  // min_ps(a, b) is (a < b ? a : b), so NaN in v passes through as in the scalar code.
  EI_ALWAYS_INLINE __m256 Apply(__m256 v) const {
    switch (mode) {
      case kRelu:
        return _mm256_max_ps(_mm256_setzero_ps(), v);
      case kLeakyRelu: {
        const __m256 ge = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ);
        return _mm256_blendv_ps(_mm256_mul_ps(v, alpha), v, ge);
      }
      case kClip:
        return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
      default:
        return v;
    }
  }
};

// Lane masks for the last, partial panel: Mask(c) enables lanes [0, c), 0 <= c <= 8.
alignas(64) constexpr int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};
EI_ALWAYS_INLINE __m256i Mask(int64_t c) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - c));
}

// Stores one row's 16 columns (cols of them valid), after the activation.
EI_ALWAYS_INLINE void StoreRow(__m256 v0, __m256 v1, const Epilogue& e, float* y, int64_t cols) {
  v0 = e.Apply(v0);
  v1 = e.Apply(v1);
  if (cols == kNr) {
    _mm256_storeu_ps(y, v0);
    _mm256_storeu_ps(y + 8, v1);
  } else {
    _mm256_maskstore_ps(y, Mask(std::min<int64_t>(cols, 8)), v0);
    _mm256_maskstore_ps(y + 8, Mask(std::max<int64_t>(cols - 8, 0)), v1);
  }
  if (e.mode == Epilogue::kAfterStore) e.act->Apply(y, static_cast<size_t>(cols));
}

// Panels per register tile: one, except for a single row (M = 1, the GEMV case), where four
// panels give eight independent FMA chains and four weight streams in flight. (Two panels for
// two-row tiles measured 10% faster at K = 784 and 10% slower at K = 2048, where the two streams
// are a multiple of 4 KiB apart; three rows and more have six chains or more.)
constexpr int PanelsPerTile(int rows) { return rows == 1 ? 4 : 1; }

// Where and how fast a tile prefetches the panels the next group will read: at its k-th step it
// prefetches line (k * step) >> 16 of each of them (step = 65536 / tiles, so the tiles of a
// group split each next panel between them and the stream from L3 overlaps all of them).
struct Prefetch {
  const float* at = nullptr;  // nullptr: none
  int64_t step = 0;
};

// One register tile: MR rows of X times NP consecutive panels, over one chunk of K.
struct TileArgs {
  const float* x = nullptr;   // row 0 of the tile, at the chunk's first k
  int64_t ldx = 0;            // floats between rows of x (K)
  const float* w = nullptr;   // the first panel, at the chunk's first k
  int64_t ps = 0;             // floats between panels (16 K)
  int64_t kc = 0;             // k steps in the chunk
  const float* bias[4] = {};  // per panel: 16 floats or nullptr (used unless accumulate)
  bool accumulate = false;    // start from y (a previous chunk's sums) instead of the bias
  float* y = nullptr;         // row 0, first panel's column 0
  int64_t ldy = 0;
  int64_t last_cols = kNr;  // columns of the last panel that exist in y
  Prefetch pf;
};

// The accumulators start from the bias (or from y), run over the chunk, and are stored after the
// epilogue. W is loaded one panel at a time (2 ymm), X broadcast one row at a time (1 ymm):
// MR x 2NP accumulators + 3 <= 16 registers.
template <int MR, int NP, bool kPrefetch>
__attribute__((noinline)) void Tile(const TileArgs& t, const Epilogue& e) {
  const float* const x = t.x;
  const float* const w = t.w;
  const int64_t ldx = t.ldx, ps = t.ps, kc = t.kc;
  __m256 c[MR][2 * NP];
  if (t.accumulate) {
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
      for (int j = 0; j < NP; ++j) {
        const float* yr = t.y + r * t.ldy + j * kNr;
        const int64_t cols = j == NP - 1 ? t.last_cols : kNr;
        if (cols == kNr) {
          c[r][2 * j] = _mm256_loadu_ps(yr);
          c[r][2 * j + 1] = _mm256_loadu_ps(yr + 8);
        } else {
          c[r][2 * j] = _mm256_maskload_ps(yr, Mask(std::min<int64_t>(cols, 8)));
          c[r][2 * j + 1] = _mm256_maskload_ps(yr + 8, Mask(std::max<int64_t>(cols - 8, 0)));
        }
      }
    }
  } else {
#pragma GCC unroll 4
    for (int j = 0; j < NP; ++j) {
      const float* b = t.bias[j];
      const __m256 b0 = b != nullptr ? _mm256_loadu_ps(b) : _mm256_setzero_ps();
      const __m256 b1 = b != nullptr ? _mm256_loadu_ps(b + 8) : _mm256_setzero_ps();
#pragma GCC unroll 6
      for (int r = 0; r < MR; ++r) {
        c[r][2 * j] = b0;
        c[r][2 * j + 1] = b1;
      }
    }
  }
#pragma GCC unroll 4
  for (int64_t kk = 0; kk < kc; ++kk) {
    if constexpr (kPrefetch) {
      const float* line = t.pf.at + ((kk * t.pf.step) >> 16) * kNr;
#pragma GCC unroll 4
      for (int j = 0; j < NP; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(line + j * ps), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int j = 0; j < NP; ++j) {
      const __m256 w0 = _mm256_loadu_ps(w + j * ps + kk * kNr);
      const __m256 w1 = _mm256_loadu_ps(w + j * ps + kk * kNr + 8);
#pragma GCC unroll 6
      for (int r = 0; r < MR; ++r) {
        const __m256 a = _mm256_broadcast_ss(x + r * ldx + kk);
        c[r][2 * j] = _mm256_fmadd_ps(a, w0, c[r][2 * j]);
        c[r][2 * j + 1] = _mm256_fmadd_ps(a, w1, c[r][2 * j + 1]);
      }
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < NP; ++j)
      StoreRow(c[r][2 * j], c[r][2 * j + 1], e, t.y + r * t.ldy + j * kNr,
               j == NP - 1 ? t.last_cols : kNr);
  }
}

using TileFn = void (*)(const TileArgs&, const Epilogue&);

template <int MR, int NP>
constexpr TileFn TileFor(bool prefetch) {
  return prefetch ? Tile<MR, NP, true> : Tile<MR, NP, false>;
}

// The tile for `rows` (1..6) x `np` (1..PanelsPerTile(rows)) panels.
TileFn SelectTile(int rows, int np, bool prefetch) {
  switch (rows) {
    case 1:
      return np == 4   ? TileFor<1, 4>(prefetch)
             : np == 3 ? TileFor<1, 3>(prefetch)
             : np == 2 ? TileFor<1, 2>(prefetch)
                       : TileFor<1, 1>(prefetch);
    case 2:
      return TileFor<2, 1>(prefetch);
    case 3:
      return TileFor<3, 1>(prefetch);
    case 4:
      return TileFor<4, 1>(prefetch);
    case 5:
      return TileFor<5, 1>(prefetch);
    default:
      return TileFor<6, 1>(prefetch);
  }
}

// The bias of panel p as 16 floats: in place for a full panel, else copied and zero-padded.
const float* PanelBias(const DenseArgs& a, int64_t p, float* tail) {
  if (a.bias == nullptr) return nullptr;
  const int64_t cols = std::min(kNr, a.n - p * kNr);
  if (cols == kNr) return a.bias + p * kNr;
  for (int64_t j = 0; j < kNr; ++j) tail[j] = j < cols ? a.bias[p * kNr + j] : 0.f;
  return tail;
}

// Loop order (BLIS without packing X): chunks of K (only when K is large), blocks of X rows that
// stay in L2, groups of panels (one panel, four at M = 1), and every row tile of the block over
// the group: a group is read from memory once per block and chunk, from L1/L2 by the other
// tiles. While a group is in use its tiles prefetch the next one (or the next block's or chunk's
// first). A chunk after the first adds to y; only the last applies the activation.
void DenseTiles(const DenseArgs& a, const Epilogue& e) {
  const int64_t k = a.k, n = a.n, panels = DensePanels(n), ps = k * kNr;
  // One chunk at M = 1: the GEMV streams each weight once anyway (chunks measured 5% slower).
  const int64_t chunks = a.m > 1 ? (k + kMaxKc - 1) / kMaxKc : 1;
  const int64_t kc_max = (k + chunks - 1) / chunks;
  const int64_t block = std::max<int64_t>(kMr, kXBlockBytes / (kc_max * 4) / kMr * kMr);
  const Epilogue none(nullptr);
  alignas(32) float tail[kNr];
  for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
    const int64_t kc = std::min(kc_max, k - k0);
    const bool last_chunk = k0 + kc == k;
    for (int64_t m0 = 0; m0 < a.m; m0 += block) {
      const int64_t mb = std::min(block, a.m - m0);
      // Rows split evenly: tiles of `base` or `base + 1` rows (M = 16 -> 6 + 5 + 5).
      const int64_t tiles = (mb + kMr - 1) / kMr, base = mb / tiles, extra = mb % tiles;
      const int group = PanelsPerTile(static_cast<int>(base));
      // At M = 1 the weights are one sequential stream and the hardware prefetcher keeps up.
      const bool prefetch = mb > 1;
      const bool next_block = m0 + block < a.m;
      for (int64_t p0 = 0; p0 < panels; p0 += group) {
        TileArgs t;
        t.x = a.x + m0 * k + k0;
        t.ldx = k;
        t.ps = ps;
        t.kc = kc;
        t.accumulate = k0 > 0;
        t.y = a.y + m0 * n + p0 * kNr;
        t.ldy = n;
        for (int64_t ti = 0; ti < tiles; ++ti) {
          const int rows = static_cast<int>(base + (ti < extra));
          const int tile_np = PanelsPerTile(rows);
          float* const y_row = t.y;
          for (int64_t p = p0; p < std::min(p0 + group, panels); p += tile_np) {
            const int np = static_cast<int>(std::min<int64_t>(tile_np, panels - p));
            for (int j = 0; j < np; ++j) t.bias[j] = PanelBias(a, p + j, tail);
            t.w = a.w + p * ps + k0 * kNr;
            t.y = y_row + (p - p0) * kNr;
            t.last_cols = std::min(kNr, n - (p + np - 1) * kNr);
            // The same panels of the next group, else of the next block's or chunk's first.
            const float* next = nullptr;
            if (p0 + group < panels) {
              if (p + group + np <= panels) next = a.w + (p + group) * ps + k0 * kNr;
            } else if (next_block) {
              next = a.w + (p - p0) * ps + k0 * kNr;
            } else if (!last_chunk) {
              next = a.w + (p - p0) * ps + (k0 + kc) * kNr;
            }
            t.pf = Prefetch{};
            if (next != nullptr) t.pf = Prefetch{next + (ti * kc / tiles) * kNr, 65536 / tiles};
            SelectTile(rows, np, prefetch && next != nullptr)(t, last_chunk ? e : none);
          }
          t.x += rows * k;
          t.y = y_row + rows * n;
        }
      }
    }
  }
}

}  // namespace

void Dense(const DenseArgs& a) {
  if (a.m <= 0) return;
  const Epilogue e(a.act);
  DenseTiles(a, e);
}

}  // namespace edgeinfer::dense_avx2

#undef EI_ALWAYS_INLINE
#pragma GCC pop_options

#endif  // __x86_64__
