// Host wrappers of the PLS-VIP CUDA passes (csrc/cuda/pls_cuda.cu), free of CUDA types so that
// the pybind11 bindings (compiled by the host compiler) can use them.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace swnas {
namespace pls_cuda {

// Column statistics of X from one pass (see pls_math.h for the definitions); all float64 on the host.
struct Stats {
  std::vector<double> colsum, sq, class_sums, counts;  // class_sums: C x p row-major
};

// One projection: with t = X v - c, g = X't, tsum = sum(t), tt = t't.
struct Projection {
  std::vector<double> g;
  double tsum = 0.0, tt = 0.0;
};

// An N x p row-major float32/float64 matrix on one GPU, with the workspace of its passes.
// Either borrowed (a device pointer owned by torch or CuPy; never freed here) or uploaded once from
// host memory (owned). Every pass runs on the matrix's own stream; extra device memory O(N + p*C).
class Matrix {
 public:
  Matrix(const void* device_ptr, int64_t n, int64_t p, bool is_double, int device);
  static std::unique_ptr<Matrix> from_host(const void* host_ptr, int64_t n, int64_t p, bool is_double, int device);
  ~Matrix();
  Matrix(const Matrix&) = delete;
  Matrix& operator=(const Matrix&) = delete;

  // One pass: colsum, centred sums of squares, per-class sums; codes (host, length n) in 0..C-1.
  Stats stats(const int32_t* codes, int64_t n_classes);
  // Enqueue t = X v - c and g = X't (v: host, length p) without waiting ...
  void project_launch(const double* v, double c);
  // ... then wait for them and copy the small results back.
  Projection project_finish();
  Projection project(const double* v, double c) {
    project_launch(v, c);
    return project_finish();
  }

  int64_t rows() const { return n_; }
  int64_t cols() const { return p_; }
  bool is_double() const { return is_double_; }
  int device() const { return device_; }

 private:
  void allocate_workspace();
  const void* x_ = nullptr;
  void* owned_ = nullptr;
  int64_t n_ = 0, p_ = 0;
  bool is_double_ = false;
  int device_ = 0;
  void* stream_ = nullptr;  // cudaStream_t
  double* d_v_ = nullptr;
  double* d_t_ = nullptr;
  double* d_g_ = nullptr;
  double* d_tstats_ = nullptr;  // sum(t), t't
};

// One projection for each matrix: all are enqueued (each on its own stream) before any is awaited.
std::vector<Projection> project_many(const std::vector<Matrix*>& ms, const std::vector<const double*>& vs,
                                     const std::vector<double>& cs);

}  // namespace pls_cuda
}  // namespace swnas
