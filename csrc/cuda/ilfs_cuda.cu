// CUDA kernels of il-FS (docs/scorers.md, section 4): class means and the token counts n(t, f); EM runs on the host.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "common/ilfs_math.h"
#include "cuda/device_buffer.h"
#include "cuda/ilfs_cuda.h"

namespace swnas {
namespace cuda {
namespace {

constexpr int kRows = 512;  // rows per block of the class-sum and token kernels

// sums[c*p + j] += x[i, j] over a chunk of rows (thread per column; atomics into global memory)
template <typename T>
__global__ void class_sums(const T* __restrict__ X, const int32_t* __restrict__ y, int64_t n, int64_t p, double* sums) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= p) return;
  const int64_t i0 = int64_t(blockIdx.y) * kRows, i1 = min(n, i0 + kRows);
  // runs of equal labels are summed in a register before one atomic
  int cur = -1;
  double acc = 0.0;
  for (int64_t i = i0; i < i1; ++i) {
    const int c = y[i];
    if (c != cur) {
      if (cur >= 0) atomicAdd(&sums[int64_t(cur) * p + j], acc);
      cur = c;
      acc = 0.0;
    }
    acc += double(X[i * p + j]);
  }
  if (cur >= 0) atomicAdd(&sums[int64_t(cur) * p + j], acc);
}

__global__ void class_means(double* sums, const double* counts, int nc, int64_t p, int* bad) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= int64_t(nc) * p) return;
  const double m = sums[k] / fmax(counts[k / p], 1.0);
  sums[k] = m;
  if (!isfinite(m)) atomicOr(bad, 1);
}

// token counts: thread per column, a chunk of rows per block; shared histogram when TT is small
template <typename T, bool kShared>
__global__ void token_counts(const T* __restrict__ X, const int32_t* __restrict__ y, int64_t n, int64_t p,
                             const double* __restrict__ mu, int nc, int tt, unsigned long long* counts) {
  extern __shared__ unsigned int hist[];  // tt x blockDim.x
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (kShared)
    for (int t = 0; t < tt; ++t) hist[t * blockDim.x + threadIdx.x] = 0u;
  if (j < p) {
    const int64_t i0 = int64_t(blockIdx.y) * kRows, i1 = min(n, i0 + kRows);
    for (int64_t i = i0; i < i1; ++i) {
      const double x = double(X[i * p + j]);
      const int ys = y[i];
      double inv_sum = 0.0, own = 0.0, iv;
      int nz = 0;
      bool own_zero = false, z;
      for (int c = 0; c < nc; ++c) {
        const double d = (x - mu[int64_t(c) * p + j]) * (x - mu[int64_t(c) * p + j]);
        ilfs::add_distance(d, inv_sum, nz, iv, z);
        if (c == ys) {
          own = iv;
          own_zero = z;
        }
      }
      const int t = ilfs::token_of(ilfs::relevance_pi(own, own_zero, inv_sum, nz), tt);
      if (kShared)
        hist[t * blockDim.x + threadIdx.x]++;
      else
        atomicAdd(&counts[int64_t(t) * p + j], 1ull);
    }
    if (kShared)
      for (int t = 0; t < tt; ++t) {
        const unsigned int h = hist[t * blockDim.x + threadIdx.x];
        if (h) atomicAdd(&counts[int64_t(t) * p + j], (unsigned long long)h);
      }
  }
}

template <typename T>
bool counts_impl(const T* X, int64_t n, int64_t p, const int32_t* y, int nc, int tt, std::vector<int64_t>& out,
                 cudaStream_t st) {
  // every check before the first allocation or copy
  const int threads = 128;
  // rows go in slabs of at most 65,535 blocks of kRows (grid.y's limit): any n fits
  const int64_t slab_rows = int64_t(65535) * kRows;
  auto slab_grid = [&](int64_t rows) {
    return dim3(unsigned((p + threads - 1) / threads), unsigned((rows + kRows - 1) / kRows));
  };
  if (nc < 1 || tt < 2) throw std::invalid_argument("n_classes/TT: out of range");
  std::vector<int32_t> hy(n);
  SWNAS_CUDA_CHECK(cudaMemcpyAsync(hy.data(), y, sizeof(int32_t) * n, cudaMemcpyDeviceToHost, st));
  SWNAS_CUDA_CHECK(cudaStreamSynchronize(st));
  std::vector<double> hc(nc, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    if (hy[i] < 0 || hy[i] >= nc) throw std::invalid_argument("y: labels must lie in 0..n_classes-1");
    hc[hy[i]] += 1.0;
  }
  DeviceBuffer<double> sums_buf(static_cast<size_t>(nc) * p, st);
  DeviceBuffer<double> cnt_buf(static_cast<size_t>(nc), st);
  DeviceBuffer<unsigned long long> counts_buf(size_t(tt) * p, st);
  DeviceBuffer<int> bad_buf(1, st);
  double *sums = sums_buf.get(), *cnt = cnt_buf.get();
  unsigned long long* dcounts = counts_buf.get();
  int* bad = bad_buf.get();
  sums_buf.zero_async(st);
  counts_buf.zero_async(st);
  bad_buf.zero_async(st);
  SWNAS_CUDA_CHECK(cudaMemcpyAsync(cnt, hc.data(), sizeof(double) * nc, cudaMemcpyHostToDevice, st));
  for (int64_t r0 = 0; r0 < n; r0 += slab_rows) {
    const int64_t rows = std::min(slab_rows, n - r0);
    class_sums<T><<<slab_grid(rows), threads, 0, st>>>(X + r0 * p, y + r0, rows, p, sums);
    SWNAS_CUDA_CHECK(cudaGetLastError());
  }
  const int64_t ncp = int64_t(nc) * p;
  class_means<<<unsigned((ncp + 255) / 256), 256, 0, st>>>(sums, cnt, nc, p, bad);
  SWNAS_CUDA_CHECK(cudaGetLastError());
  int hbad = 0;
  SWNAS_CUDA_CHECK(cudaMemcpyAsync(&hbad, bad, sizeof(int), cudaMemcpyDeviceToHost, st));
  SWNAS_CUDA_CHECK(cudaStreamSynchronize(st));
  if (!hbad) {
    const size_t shmem = sizeof(unsigned int) * size_t(tt) * threads;
    for (int64_t r0 = 0; r0 < n; r0 += slab_rows) {
      const int64_t rows = std::min(slab_rows, n - r0);
      if (shmem <= 32 * 1024)
        token_counts<T, true>
            <<<slab_grid(rows), threads, shmem, st>>>(X + r0 * p, y + r0, rows, p, sums, nc, tt, dcounts);
      else
        token_counts<T, false><<<slab_grid(rows), threads, 0, st>>>(X + r0 * p, y + r0, rows, p, sums, nc, tt, dcounts);
      SWNAS_CUDA_CHECK(cudaGetLastError());
    }
    std::vector<unsigned long long> hcounts(size_t(tt) * p);
    SWNAS_CUDA_CHECK(cudaMemcpyAsync(hcounts.data(), dcounts, sizeof(unsigned long long) * hcounts.size(),
                                     cudaMemcpyDeviceToHost, st));
    SWNAS_CUDA_CHECK(cudaStreamSynchronize(st));
    out.assign(hcounts.begin(), hcounts.end());
  }
  return !hbad;
}

}  // namespace

bool ilfs_token_counts(const MatrixView& X, const int32_t* y, int nc, int tt, std::vector<int64_t>& counts,
                       uintptr_t stream) {
  cudaStream_t st = reinterpret_cast<cudaStream_t>(stream);
  return dispatch_dtype(X.dtype, [&](auto tag) {
    using T = decltype(tag);
    return counts_impl<T>(X.as<T>(), X.rows, X.cols, y, nc, tt, counts, st);
  });
}

}  // namespace cuda
}  // namespace swnas
