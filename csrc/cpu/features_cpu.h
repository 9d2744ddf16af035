// Declares the CPU stage-feature reduction (features_cpu.cpp): plain C++, no Python types.
#pragma once
#include <cstdint>

namespace swnas {
namespace cpu {

// An (n, c, h, w) float32 batch pooled with k x k windows, stride k: (n, p = c * ho * wo).
struct PoolShape {
  int64_t n, c, h, w, k, ho, wo, p;
};

// PoolShape of a valid input; throws std::invalid_argument naming `x` or `k` otherwise.
PoolShape pool_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k);

// k x k average pooling into out (n x p), flattened channel-major. OpenMP over samples.
void avgpool_flat(const float* x, float* out, const PoolShape& s);

// The same pooling fused with float64 column sums (p) and per-class column sums (n_classes x p),
// both overwritten; labels int32 in 0..n_classes-1 (checked by the caller).
void avgpool_stats(const float* x, const int32_t* labels, int64_t n_classes, float* out, double* colsum,
                   double* clssum, const PoolShape& s);

}  // namespace cpu
}  // namespace swnas
