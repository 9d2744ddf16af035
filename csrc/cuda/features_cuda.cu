// CUDA stage-feature reduction: average pooling of a stage's NCHW activations fused with the column
// and per-class column sums of the pooled features, so the full map never leaves the GPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>

#include "cuda/device_buffer.h"
#include "cuda/features_cuda.h"

namespace swnas {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = 64;  // rows summed by one thread before its atomic add

// One thread per pooled value (i, f): f = (ch, oi, oj), channel-major like torch.flatten(NCHW).
__global__ void pool_kernel(const float* __restrict__ x, float* __restrict__ out, int64_t n, int64_t c,
                            int64_t h, int64_t w, int64_t k, int64_t ho, int64_t wo) {
  const int64_t p = c * ho * wo;
  const int64_t total = n * p;
  const float inv = 1.0f / static_cast<float>(k * k);
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / p;
    const int64_t f = e - i * p;
    const int64_t ch = f / (ho * wo);
    const int64_t rem = f - ch * ho * wo;
    const int64_t oi = rem / wo;
    const int64_t oj = rem - oi * wo;
    const float* src = x + ((i * c + ch) * h + oi * k) * w + oj * k;
    float s = 0.0f;
    for (int64_t r = 0; r < k; ++r) {
      const float* row = src + r * w;
      for (int64_t q = 0; q < k; ++q) s += row[q];
    }
    out[e] = s * inv;
  }
}

// Block (bx, by): columns bx*blockDim.x .. +blockDim.x, rows by*kRowsPerBlock .. +kRowsPerBlock.
// Column sums are accumulated in a register and added once; class sums are added per row
// (consecutive threads touch consecutive columns, so the atomics do not collide within a warp).
__global__ void sums_kernel(const float* __restrict__ feats, const int32_t* __restrict__ labels,
                            double* __restrict__ colsum, double* __restrict__ clssum, int64_t n, int64_t p) {
  const int64_t f = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (f >= p) return;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * kRowsPerBlock;
  const int64_t r1 = r0 + kRowsPerBlock < n ? r0 + kRowsPerBlock : n;
  double acc = 0.0;
  for (int64_t i = r0; i < r1; ++i) {
    const double v = static_cast<double>(feats[i * p + f]);
    acc += v;
    atomicAdd(clssum + static_cast<int64_t>(labels[i]) * p + f, v);
  }
  atomicAdd(colsum + f, acc);
}

void check_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k) {
  if (n < 1 || c < 1 || h < 1 || w < 1) throw std::invalid_argument("x: empty feature map");
  if (k < 1 || k > h || k > w) throw std::invalid_argument("k: pooling size must lie in 1..min(h, w)");
}

int grid_for(int64_t total) {
  int64_t blocks = (total + kThreads - 1) / kThreads;
  if (blocks > 65535LL * 16) blocks = 65535LL * 16;
  if (blocks < 1) blocks = 1;
  return static_cast<int>(blocks);
}

}  // namespace

void avgpool_flat(const float* x, float* out, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                  std::uintptr_t stream) {
  check_shape(n, c, h, w, k);
  const int64_t ho = h / k, wo = w / k;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  pool_kernel<<<grid_for(n * c * ho * wo), kThreads, 0, s>>>(x, out, n, c, h, w, k, ho, wo);
  SWNAS_CUDA_CHECK(cudaGetLastError());
}

void avgpool_stats(const float* x, const int32_t* labels, float* out, double* colsum, double* clssum,
                   int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t n_classes,
                   std::uintptr_t stream) {
  if (n_classes < 1) throw std::invalid_argument("n_classes: must be >= 1");
  avgpool_flat(x, out, n, c, h, w, k, stream);
  const int64_t p = c * (h / k) * (w / k);
  auto s = reinterpret_cast<cudaStream_t>(stream);
  // one launch per slab of at most 65535 row blocks: the grid's y size stays legal for any n
  const int64_t slab = 65535LL * kRowsPerBlock;
  for (int64_t r0 = 0; r0 < n; r0 += slab) {
    const int64_t m = n - r0 < slab ? n - r0 : slab;
    const dim3 grid(static_cast<unsigned>((p + kThreads - 1) / kThreads),
                    static_cast<unsigned>((m + kRowsPerBlock - 1) / kRowsPerBlock));
    sums_kernel<<<grid, kThreads, 0, s>>>(out + r0 * p, labels + r0, colsum, clssum, m, p);
    SWNAS_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace cuda
}  // namespace swnas
