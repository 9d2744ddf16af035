// CUDA kernels of inf-FS (docs/scorers.md, section 3): column statistics, key-packed device-wide ranking,
// split-K rank Gram.
#include <cuda_runtime.h>
#include <cub/cub.cuh>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "cuda/device_buffer.h"
#include "cuda/inffs_cuda.h"

namespace swnas {
namespace cuda {
namespace {

constexpr int kStatRows = 64;  // row chunks of the column statistics

template <typename T>
__global__ void col_partial(const T* __restrict__ X, int64_t n, int64_t p, int64_t rows, double* psum, double* pmin,
                            double* pmax) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= p) return;
  const int64_t i0 = int64_t(blockIdx.y) * rows, i1 = min(n, i0 + rows);
  double s = 0.0, lo = INFINITY, hi = -INFINITY;
  for (int64_t i = i0; i < i1; ++i) {
    const double v = double(X[i * p + j]);
    s += v;
    lo = fmin(lo, v);
    hi = fmax(hi, v);
  }
  psum[blockIdx.y * p + j] = s;
  pmin[blockIdx.y * p + j] = lo;
  pmax[blockIdx.y * p + j] = hi;
}

__global__ void col_reduce(int64_t n, int64_t p, int chunks, const double* psum, const double* pmin, const double* pmax,
                           double* mean, double* lo, double* hi) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= p) return;
  double s = 0.0, a = INFINITY, b = -INFINITY;
  for (int r = 0; r < chunks; ++r) {
    s += psum[r * p + j];
    a = fmin(a, pmin[r * p + j]);
    b = fmax(b, pmax[r * p + j]);
  }
  mean[j] = s / double(n);
  lo[j] = a;
  hi[j] = b;
}

template <typename T>
__global__ void col_sq_partial(const T* __restrict__ X, int64_t n, int64_t p, int64_t rows, const double* mean,
                               double* psq) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= p) return;
  const int64_t i0 = int64_t(blockIdx.y) * rows, i1 = min(n, i0 + rows);
  const double mu = mean[j];
  double s = 0.0;
  for (int64_t i = i0; i < i1; ++i) {
    const double d = double(X[i * p + j]) - mu;
    s += d * d;
  }
  psq[blockIdx.y * p + j] = s;
}

__global__ void col_std(int64_t n, int64_t p, int chunks, const double* psq, const double* mean, const double* lo,
                        const double* hi, double* stdv) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= p) return;
  double s = 0.0;
  for (int r = 0; r < chunks; ++r) s += psq[r * p + j];
  const bool finite = isfinite(mean[j]) && isfinite(s);
  stdv[j] = !finite ? NAN : (lo[j] == hi[j] ? 0.0 : sqrt(s / double(n - 1)));
}

template <typename T>
__global__ void centre_values(const T* __restrict__ X, int64_t n, int64_t p, const double* mean, const double* stdv,
                              T* Z) {
  const int64_t total = n * p;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = k % p;
    const double sd = stdv[j];
    Z[k] = (sd > 0.0) ? T(double(X[k]) - mean[j]) : T(0);
  }
}

// Order-preserving unsigned image of a float: a < b  <=>  ordered_bits(a) < ordered_bits(b) for non-NaN values.
// -0.0 is turned into +0.0 first so that the two zeros tie.
__device__ __forceinline__ uint32_t ordered_bits(float v) {
  if (v == 0.0f) v = 0.0f;
  const uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ uint64_t ordered_bits(double v) {
  if (v == 0.0) v = 0.0;
  const uint64_t u = static_cast<uint64_t>(__double_as_longlong(v));
  return (u >> 63) ? ~u : (u | (uint64_t(1) << 63));
}

// float32 block of cb columns: key[k] = (column-in-block << 32) | ordered value, row[k] = row, for k = i*cb + b.
// X is read row by row and keys written in the same order, so both are contiguous; the sort ignores input order.
__global__ void pack_keys_f32(const float* __restrict__ X, int64_t n, int64_t p, int64_t j0, int cb, uint64_t* keys,
                              int32_t* rows) {
  const int64_t total = n * cb;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / cb, b = k % cb;
    keys[k] = (uint64_t(b) << 32) | ordered_bits(X[i * p + j0 + b]);
    rows[k] = int32_t(i);
  }
}

// float64 pass 1 (64 value bits leave no room for the column): key[k] = ordered value, flat[k] = k = i*cb + b.
__global__ void value_keys_f64(const double* __restrict__ X, int64_t n, int64_t p, int64_t j0, int cb, uint64_t* keys,
                               int32_t* flat) {
  const int64_t total = n * cb;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / cb, b = k % cb;
    keys[k] = ordered_bits(X[i * p + j0 + b]);
    flat[k] = int32_t(k);
  }
}

// 1 where a sorted key differs from its predecessor; the inclusive sum of these is a dense value id (0-based).
__global__ void value_change_flags(const uint64_t* __restrict__ skeys, int64_t m, uint32_t* flags) {
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < m; k += int64_t(gridDim.x) * blockDim.x)
    flags[k] = (k > 0 && skeys[k] != skeys[k - 1]) ? 1u : 0u;
}

// float64 pass 2: key = (column-in-block << gbits) | dense value id, row = row of the element.
__global__ void column_keys_f64(const int32_t* __restrict__ sflat, const uint32_t* __restrict__ vid, int64_t m, int cb,
                                int gbits, uint64_t* keys, int32_t* rows) {
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < m; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t f = sflat[k];
    keys[k] = (uint64_t(f % cb) << gbits) | uint64_t(vid[k]);
    rows[k] = int32_t(f / cb);
  }
}

// Sorted packed keys: column b of the block fills positions [b*n, (b+1)*n) in value order (the column sits in the
// high bits). Equal keys form a run lo..hi-1 that shares the average rank (lo+hi+1)/2; Z gets it centred by (n+1)/2.
template <typename T>
__global__ void ranks_from_runs(const uint64_t* __restrict__ skeys, const int32_t* __restrict__ srows, int64_t n,
                                int64_t p, int64_t j0, int cb, T* Z) {
  const int64_t total = n * cb;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = k / n, pos = k - b * n;
    const uint64_t* seg = skeys + b * n;
    const uint64_t key = skeys[k];
    int64_t a = 0, e = pos;  // first index of the run, in [0, pos]
    while (a < e) {
      const int64_t mid = (a + e) / 2;
      if (seg[mid] < key)
        a = mid + 1;
      else
        e = mid;
    }
    const int64_t lo = a;
    a = pos + 1;
    e = n;  // one past the run, in [pos+1, n]
    while (a < e) {
      const int64_t mid = (a + e) / 2;
      if (seg[mid] <= key)
        a = mid + 1;
      else
        e = mid;
    }
    Z[int64_t(srows[k]) * p + j0 + b] = T(0.5 * double(lo + a - n));
  }
}

// Rows of Z summed in T before a partial sum joins the double accumulators of gram_splitk: short enough that
// float32 rounding cannot build a bias over repeated (tied) products, docs/backends.md "Precision of the GPU Gram".
constexpr int kGramTileRows = 16;
// Most rows one gram_splitk block sums (split-K chunk): bounds a block's work, not its precision.
constexpr int64_t kGramChunkRows = 65536;

// G (double, upper triangle of 64x64 tiles) += Z'Z over one chunk of rows: every tile of kGramTileRows rows is
// summed in T (FMA), the tiles in double, and the chunks meet in G through double atomics.
template <typename T>
__global__ void __launch_bounds__(256)
    gram_splitk(const T* __restrict__ Z, int64_t n, int64_t p, int64_t kchunk, double* G) {
  __shared__ T As[kGramTileRows][64];
  __shared__ T Bs[kGramTileRows][64];
  const int nt = int((p + 63) / 64);
  int t = blockIdx.x, bi = 0;
  while (t >= nt - bi) {
    t -= nt - bi;
    ++bi;
  }
  const int bj = bi + t;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  double acc[4][4];
#pragma unroll
  for (int m = 0; m < 4; ++m)
#pragma unroll
    for (int q = 0; q < 4; ++q) acc[m][q] = 0.0;
  const int64_t k0 = int64_t(blockIdx.y) * kchunk, k1 = min(n, k0 + kchunk);
  for (int64_t kk = k0; kk < k1; kk += kGramTileRows) {
    for (int l = threadIdx.x; l < kGramTileRows * 64; l += 256) {
      const int r = l / 64, c = l % 64;
      const int64_t row = kk + r;
      const int64_t ca = int64_t(bi) * 64 + c, cbb = int64_t(bj) * 64 + c;
      As[r][c] = (row < k1 && ca < p) ? Z[row * p + ca] : T(0);
      Bs[r][c] = (row < k1 && cbb < p) ? Z[row * p + cbb] : T(0);
    }
    __syncthreads();
    T part[4][4];
#pragma unroll
    for (int m = 0; m < 4; ++m)
#pragma unroll
      for (int q = 0; q < 4; ++q) part[m][q] = T(0);
#pragma unroll
    for (int r = 0; r < kGramTileRows; ++r) {
      T a[4], b[4];
#pragma unroll
      for (int m = 0; m < 4; ++m) {
        a[m] = As[r][ty + 16 * m];
        b[m] = Bs[r][tx + 16 * m];
      }
#pragma unroll
      for (int m = 0; m < 4; ++m)
#pragma unroll
        for (int q = 0; q < 4; ++q) part[m][q] += a[m] * b[q];
    }
#pragma unroll
    for (int m = 0; m < 4; ++m)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[m][q] += double(part[m][q]);
    __syncthreads();
  }
#pragma unroll
  for (int m = 0; m < 4; ++m)
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int64_t gi = int64_t(bi) * 64 + ty + 16 * m, gj = int64_t(bj) * 64 + tx + 16 * q;
      if (gi < p && gj < p && gi <= gj) atomicAdd(&G[gi * p + gj], acc[m][q]);
    }
}

__global__ void symmetrise(double* G, int64_t p) {
  const int64_t total = p * p;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / p, j = k % p;
    if (i > j) G[k] = G[j * p + i];
  }
}

int grid_for(int64_t total, int threads = 256) {
  return int(std::max<int64_t>(1, std::min<int64_t>((total + threads - 1) / threads, 65535 * 8)));
}

// Bits needed to write the values 0..x (0 for x = 0).
int bits_for(uint64_t x) {
  int b = 0;
  while (x >> b) ++b;
  return b;
}

// Columns per ranking block: the block's sort buffers (bytes_per_item each) take at most half the free device
// memory, and a block's n*cb items stay below 2^31 (int32 flat indices, CUB's item count).
int64_t column_block(int64_t n, int64_t p, size_t bytes_per_item) {
  size_t free_bytes = 0, total_bytes = 0;
  SWNAS_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const int64_t by_memory = int64_t(free_bytes / 2 / bytes_per_item) / std::max<int64_t>(n, 1);
  const int64_t by_index = (int64_t(1) << 31) / std::max<int64_t>(n, 1) - 1;
  return std::max<int64_t>(1, std::min({p, by_memory, by_index}));
}

// Device-wide radix sort of (keys, rows) on bits [0, end_bit); temp grows as needed. Result: the buffers' Current().
void sort_pairs(cub::DoubleBuffer<uint64_t>& keys, cub::DoubleBuffer<int32_t>& rows, int64_t m, int end_bit,
                DeviceBuffer<unsigned char>& temp, cudaStream_t st) {
  size_t need = 0;
  SWNAS_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, need, keys, rows, int(m), 0, end_bit, st));
  if (need > temp.size()) temp = DeviceBuffer<unsigned char>(need, st);
  SWNAS_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), need, keys, rows, int(m), 0, end_bit, st));
}

// Centred average ranks of every column of X into Z, in blocks of columns, each ranked by one device-wide sort
// of packed (column, value) keys so that every SM works whatever the column length.
template <typename T>
void rank_columns(const T* X, int64_t n, int64_t p, T* Z, cudaStream_t st) {
  constexpr bool kSingle = sizeof(T) == 4;
  const size_t per_item = 2 * sizeof(uint64_t) + 2 * sizeof(int32_t) + (kSingle ? 0 : sizeof(uint32_t));
  const int64_t cb = column_block(n, p, per_item);
  const size_t items = size_t(n * cb);
  DeviceBuffer<uint64_t> key_a(items, st), key_b(items, st);
  DeviceBuffer<int32_t> row_a(items, st), row_b(items, st);
  DeviceBuffer<uint32_t> vid(kSingle ? 0 : items, st);
  DeviceBuffer<unsigned char> temp;
  for (int64_t j0 = 0; j0 < p; j0 += cb) {
    const int nb = int(std::min<int64_t>(cb, p - j0));
    const int64_t m = n * nb;
    cub::DoubleBuffer<uint64_t> keys(key_a.get(), key_b.get());
    cub::DoubleBuffer<int32_t> rows(row_a.get(), row_b.get());
    if constexpr (kSingle) {
      pack_keys_f32<<<grid_for(m), 256, 0, st>>>(X, n, p, j0, nb, keys.Current(), rows.Current());
      SWNAS_CUDA_CHECK(cudaGetLastError());
      sort_pairs(keys, rows, m, 32 + bits_for(uint64_t(nb - 1)), temp, st);
    } else {
      value_keys_f64<<<grid_for(m), 256, 0, st>>>(X, n, p, j0, nb, keys.Current(), rows.Current());
      SWNAS_CUDA_CHECK(cudaGetLastError());
      sort_pairs(keys, rows, m, 64, temp, st);
      value_change_flags<<<grid_for(m), 256, 0, st>>>(keys.Current(), m, vid.get());
      SWNAS_CUDA_CHECK(cudaGetLastError());
      size_t need = 0;
      SWNAS_CUDA_CHECK(cub::DeviceScan::InclusiveSum(nullptr, need, vid.get(), vid.get(), int(m), st));
      if (need > temp.size()) temp = DeviceBuffer<unsigned char>(need, st);
      SWNAS_CUDA_CHECK(cub::DeviceScan::InclusiveSum(temp.get(), need, vid.get(), vid.get(), int(m), st));
      const int gbits = bits_for(uint64_t(m - 1));
      column_keys_f64<<<grid_for(m), 256, 0, st>>>(rows.Current(), vid.get(), m, nb, gbits, keys.Alternate(),
                                                   rows.Alternate());
      SWNAS_CUDA_CHECK(cudaGetLastError());
      keys.selector ^= 1;
      rows.selector ^= 1;
      sort_pairs(keys, rows, m, gbits + bits_for(uint64_t(nb - 1)), temp, st);
    }
    ranks_from_runs<T><<<grid_for(m), 256, 0, st>>>(keys.Current(), rows.Current(), n, p, j0, nb, Z);
    SWNAS_CUDA_CHECK(cudaGetLastError());
  }
  SWNAS_CUDA_CHECK(cudaStreamSynchronize(st));
}

template <typename T>
void rank_gram(const T* X, int64_t n, int64_t p, bool spearman, T* Z, double* G, double* stdv, cudaStream_t st) {
  if (n >= (int64_t(1) << 31)) throw std::invalid_argument("X: too many rows for the CUDA ranking kernel");
  const int64_t rows = (n + kStatRows - 1) / kStatRows;
  DeviceBuffer<double> stat_buf(size_t(p) * (4 * kStatRows + 3), st);
  double *psum = stat_buf.get(), *pmin = psum + kStatRows * p, *pmax = pmin + kStatRows * p,
         *psq = pmax + kStatRows * p;
  double *mean = psq + kStatRows * p, *lo = mean + p, *hi = lo + p;
  const dim3 sg(unsigned((p + 127) / 128), kStatRows);
  col_partial<T><<<sg, 128, 0, st>>>(X, n, p, rows, psum, pmin, pmax);
  col_reduce<<<unsigned((p + 127) / 128), 128, 0, st>>>(n, p, kStatRows, psum, pmin, pmax, mean, lo, hi);
  col_sq_partial<T><<<sg, 128, 0, st>>>(X, n, p, rows, mean, psq);
  col_std<<<unsigned((p + 127) / 128), 128, 0, st>>>(n, p, kStatRows, psq, mean, lo, hi, stdv);
  SWNAS_CUDA_CHECK(cudaGetLastError());
  if (!spearman) {
    centre_values<T><<<grid_for(n * p), 256, 0, st>>>(X, n, p, mean, stdv, Z);
    SWNAS_CUDA_CHECK(cudaGetLastError());
  } else {
    rank_columns<T>(X, n, p, Z, st);
  }
  // split-K Gram: enough blocks to fill the GPU, at most kGramChunkRows rows per block, chunks of whole tiles
  const int64_t nt = (p + 63) / 64, tiles = nt * (nt + 1) / 2;
  int64_t nchunks = std::max<int64_t>(1, 2048 / tiles);
  nchunks = std::max<int64_t>(nchunks, (n + kGramChunkRows - 1) / kGramChunkRows);
  nchunks = std::min<int64_t>(nchunks, std::max<int64_t>(1, (n + 255) / 256));
  nchunks = std::min<int64_t>(nchunks, 65535);
  int64_t kchunk = (n + nchunks - 1) / nchunks;
  kchunk = (kchunk + kGramTileRows - 1) / kGramTileRows * kGramTileRows;
  nchunks = (n + kchunk - 1) / kchunk;
  SWNAS_CUDA_CHECK(cudaMemsetAsync(G, 0, sizeof(double) * size_t(p) * p, st));
  gram_splitk<T><<<dim3(unsigned(tiles), unsigned(nchunks)), 256, 0, st>>>(Z, n, p, kchunk, G);
  SWNAS_CUDA_CHECK(cudaGetLastError());
  symmetrise<<<grid_for(p * p), 256, 0, st>>>(G, p);
  SWNAS_CUDA_CHECK(cudaGetLastError());
  SWNAS_CUDA_CHECK(cudaStreamSynchronize(st));
}

}  // namespace

void inffs_rank_gram(const MatrixView& X, bool spearman, void* Z, double* G, double* stdv, uintptr_t stream) {
  cudaStream_t st = reinterpret_cast<cudaStream_t>(stream);
  dispatch_dtype(X.dtype, [&](auto tag) {
    using T = decltype(tag);
    rank_gram<T>(X.as<T>(), X.rows, X.cols, spearman, static_cast<T*>(Z), G, stdv, st);
  });
}

}  // namespace cuda
}  // namespace swnas
