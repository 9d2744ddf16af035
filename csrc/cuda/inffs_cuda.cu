// CUDA kernels of inf-FS (docs/scorers.md, section 3): column statistics, CUB segmented ranking, split-K rank Gram.
#include <cub/cub.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "cuda/device_buffer.h"
#include "cuda/inffs_cuda.h"

namespace swnas {
namespace cuda {
namespace {

constexpr int kStatRows = 64;  // row chunks of the column statistics

template <typename T>
__global__ void col_partial(const T* __restrict__ X, int64_t n, int64_t p, int64_t rows, double* psum,
                            double* pmin, double* pmax) {
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

__global__ void col_reduce(int64_t n, int64_t p, int chunks, const double* psum, const double* pmin,
                           const double* pmax, double* mean, double* lo, double* hi) {
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

// keys[b*n + i] = X[i, j0 + b] (with -0.0 turned into +0.0 so that equal values tie), vals = row index
template <typename T>
__global__ void gather_columns(const T* __restrict__ X, int64_t n, int64_t p, int64_t j0, int cb, T* keys,
                               int32_t* vals) {
  const int64_t total = n * cb;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / cb, b = k % cb;  // consecutive threads read consecutive columns of a row
    T v = X[i * p + j0 + b];
    if (v == T(0)) v = T(0);
    keys[b * n + i] = v;
    vals[b * n + i] = int32_t(i);
  }
}

// centred average rank of every sorted element: positions lo..hi-1 share the rank (lo+hi+1)/2
template <typename T>
__global__ void ranks_from_sorted(const T* __restrict__ skeys, const int32_t* __restrict__ svals, int64_t n,
                                  int64_t p, int64_t j0, int cb, T* Z) {
  const int64_t total = n * cb;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = k / n;
    const T* seg = skeys + b * n;
    const T key = skeys[k];
    int64_t a = 0, e = k - b * n;  // lower bound in [0, pos]
    while (a < e) {
      int64_t m = (a + e) / 2;
      if (seg[m] < key) a = m + 1; else e = m;
    }
    const int64_t lo = a;
    a = k - b * n + 1;
    e = n;  // upper bound in [pos+1, n]
    while (a < e) {
      int64_t m = (a + e) / 2;
      if (seg[m] <= key) a = m + 1; else e = m;
    }
    const int64_t hi = a;
    Z[int64_t(svals[k]) * p + j0 + b] = T(0.5 * double(lo + hi - n));
  }
}

// G (double, upper triangle of 64x64 tiles) += Z'Z over one chunk of rows; accumulate in T per chunk.
template <typename T>
__global__ void __launch_bounds__(256) gram_splitk(const T* __restrict__ Z, int64_t n, int64_t p, int64_t kchunk,
                                                   double* G) {
  __shared__ T As[16][64];
  __shared__ T Bs[16][64];
  const int nt = int((p + 63) / 64);
  int t = blockIdx.x, bi = 0;
  while (t >= nt - bi) { t -= nt - bi; ++bi; }
  const int bj = bi + t;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  T acc[4][4];
#pragma unroll
  for (int m = 0; m < 4; ++m)
#pragma unroll
    for (int q = 0; q < 4; ++q) acc[m][q] = T(0);
  const int64_t k0 = int64_t(blockIdx.y) * kchunk, k1 = min(n, k0 + kchunk);
  for (int64_t kk = k0; kk < k1; kk += 16) {
    for (int l = threadIdx.x; l < 16 * 64; l += 256) {
      const int r = l / 64, c = l % 64;
      const int64_t row = kk + r;
      const int64_t ca = int64_t(bi) * 64 + c, cbb = int64_t(bj) * 64 + c;
      As[r][c] = (row < k1 && ca < p) ? Z[row * p + ca] : T(0);
      Bs[r][c] = (row < k1 && cbb < p) ? Z[row * p + cbb] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < 16; ++r) {
      T a[4], b[4];
#pragma unroll
      for (int m = 0; m < 4; ++m) { a[m] = As[r][ty + 16 * m]; b[m] = Bs[r][tx + 16 * m]; }
#pragma unroll
      for (int m = 0; m < 4; ++m)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[m][q] += a[m] * b[q];
    }
    __syncthreads();
  }
#pragma unroll
  for (int m = 0; m < 4; ++m)
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int64_t gi = int64_t(bi) * 64 + ty + 16 * m, gj = int64_t(bj) * 64 + tx + 16 * q;
      if (gi < p && gj < p && gi <= gj) atomicAdd(&G[gi * p + gj], double(acc[m][q]));
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

template <typename T>
void rank_gram(const T* X, int64_t n, int64_t p, bool spearman, T* Z, double* G, double* stdv, cudaStream_t st) {
  if (n >= (int64_t(1) << 31)) throw std::invalid_argument("X: too many rows for the CUDA ranking kernel");
  const int64_t rows = (n + kStatRows - 1) / kStatRows;
  DeviceBuffer<double> stat_buf(size_t(p) * (4 * kStatRows + 3));
  double *psum = stat_buf.get(), *pmin = psum + kStatRows * p, *pmax = pmin + kStatRows * p, *psq = pmax + kStatRows * p;
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
    // columns in chunks of cb so that the sort buffers stay near 2^26 elements
    const int cb = int(std::max<int64_t>(1, std::min<int64_t>(p, (int64_t(1) << 26) / std::max<int64_t>(n, 1))));
    const int64_t m = n * cb;
    const size_t elems = static_cast<size_t>(m);
    DeviceBuffer<T> keys_in{elems}, keys_out{elems};
    DeviceBuffer<int32_t> vals_in{elems}, vals_out{elems}, offsets{static_cast<size_t>(cb) + 1};
    T *k_in = keys_in.get(), *k_out = keys_out.get();
    int32_t *v_in = vals_in.get(), *v_out = vals_out.get(), *offs = offsets.get();
    std::vector<int32_t> h_offs(cb + 1);
    for (int b = 0; b <= cb; ++b) h_offs[b] = int32_t(int64_t(b) * n);
    SWNAS_CUDA_CHECK(cudaMemcpyAsync(offs, h_offs.data(), sizeof(int32_t) * (cb + 1), cudaMemcpyHostToDevice, st));
    size_t temp_bytes = 0;
    SWNAS_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairs(nullptr, temp_bytes, k_in, k_out, v_in, v_out,
                                                               int(m), cb, offs, offs + 1, 0, int(sizeof(T) * 8), st));
    DeviceBuffer<unsigned char> temp_buf(temp_bytes);
    void* temp = temp_buf.get();
    for (int64_t j0 = 0; j0 < p; j0 += cb) {
      const int nb = int(std::min<int64_t>(cb, p - j0));
      const int64_t mm = n * nb;
      gather_columns<T><<<grid_for(mm), 256, 0, st>>>(X, n, p, j0, nb, k_in, v_in);
      SWNAS_CUDA_CHECK(cudaGetLastError());
      size_t tb = temp_bytes;
      SWNAS_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairs(temp, tb, k_in, k_out, v_in, v_out, int(mm), nb,
                                                                 offs, offs + 1, 0, int(sizeof(T) * 8), st));
      ranks_from_sorted<T><<<grid_for(mm), 256, 0, st>>>(k_out, v_out, n, p, j0, nb, Z);
      SWNAS_CUDA_CHECK(cudaGetLastError());
    }
    SWNAS_CUDA_CHECK(cudaStreamSynchronize(st));
  }
  // split-K Gram: enough blocks to fill the GPU, float chunks short enough to stay accurate
  const int64_t nt = (p + 63) / 64, tiles = nt * (nt + 1) / 2;
  int64_t nchunks = std::max<int64_t>(1, 2048 / tiles);
  nchunks = std::max<int64_t>(nchunks, (n + 4095) / 4096);
  nchunks = std::min<int64_t>(nchunks, std::max<int64_t>(1, (n + 255) / 256));
  nchunks = std::min<int64_t>(nchunks, 65535);
  int64_t kchunk = (n + nchunks - 1) / nchunks;
  kchunk = (kchunk + 15) / 16 * 16;
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
