// Host interface of the PLS-VIP CUDA passes (pls_cuda.cu), free of CUDA types so that the pybind11
// bindings (compiled by the host compiler) can use it.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "common/matrix_view.h"

namespace swnas {
namespace cuda {

// Column statistics of X from one pass (see common/pls_math.h); all float64 on the host.
struct PlsStats {
  std::vector<double> colsum, sq, class_sums, counts;  // class_sums: C x p row-major
};

// One projection: with t = X v - c, g = X't, tsum = sum(t), tt = t't; g is empty for a projection
// without the loading (the last component's, whose X't kernel PLS never uses: X't is not launched).
struct PlsProjection {
  std::vector<double> g;
  double tsum = 0.0, tt = 0.0;
};

// An N x p matrix on one GPU (a MatrixView with device >= 0) with the workspace of its passes.
// Either borrowed (memory owned by torch or CuPy; never freed here) or uploaded once from host
// memory (owned). Every pass runs on the matrix's own stream; extra device memory O(N + p*C).
class PlsMatrix {
 public:
  // Borrow `x`; the passes first wait (on the device) for the work queued on `producer_stream`
  // (torch's or CuPy's current stream, 0 = the legacy default stream) so that pending writes to X
  // are ordered before the reads, without synchronising the whole device.
  PlsMatrix(const MatrixView& x, std::uintptr_t producer_stream);
  // Upload a host matrix once to `device`.
  static std::unique_ptr<PlsMatrix> from_host(const MatrixView& host, int device);
  ~PlsMatrix();
  PlsMatrix(const PlsMatrix&) = delete;
  PlsMatrix& operator=(const PlsMatrix&) = delete;

  // One pass: colsum, centred sums of squares, per-class sums; codes (host, length n) in 0..C-1.
  PlsStats stats(const int32_t* codes, int64_t n_classes);
  // Enqueue t = X v - c and, with `loading`, g = X't (v: host, length p) without waiting ...
  void project_launch(const double* v, double c, bool loading = true);
  // ... then wait for them and copy the small results back (g only with `loading`).
  PlsProjection project_finish(bool loading = true);
  PlsProjection project(const double* v, double c, bool loading = true) {
    project_launch(v, c, loading);
    return project_finish(loading);
  }

  const MatrixView& view() const { return x_; }

 private:
  struct Workspace;  // device buffers and the stream, defined in pls_cuda.cu
  MatrixView x_;
  std::unique_ptr<Workspace> ws_;
};

// One projection for each matrix: all are enqueued (each on its own stream) before any is awaited.
std::vector<PlsProjection> pls_project_many(const std::vector<PlsMatrix*>& ms, const std::vector<const double*>& vs,
                                            const std::vector<double>& cs, bool loading = true);

}  // namespace cuda
}  // namespace swnas
