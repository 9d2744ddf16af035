// Host interface of the CUDA stage-feature reduction (features_cuda.cu); raw device pointers, no PyTorch.
#pragma once
#include <cstdint>

namespace swnas {
namespace cuda {

// k x k average pooling (stride k, valid) of x (n, c, h, w) float32 on the device into
// out (n, c*(h/k)*(w/k)) float32, flattened channel-major; launched on `stream` (0 = default).
void avgpool_flat(const float* x, float* out, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                  std::uintptr_t stream);

// The same pooling fused with column sums colsum (p) and per-class column sums clssum
// (n_classes, p), both float64 and ADDED to (the caller zeroes them); labels int32 in 0..n_classes-1.
void avgpool_stats(const float* x, const int32_t* labels, float* out, double* colsum, double* clssum,
                   int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t n_classes,
                   std::uintptr_t stream);

}  // namespace cuda
}  // namespace swnas
