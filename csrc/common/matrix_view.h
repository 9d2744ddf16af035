// The one descriptor of a row-major float32/float64 matrix that every kernel takes (host or device memory).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <utility>

namespace swnas {

enum class DType : int { f32 = 0, f64 = 1 };

// Where a matrix is and what it holds; never owns its memory. `device` is -1 for host memory.
struct MatrixView {
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  DType dtype = DType::f32;
  int device = -1;

  template <class T>
  const T* as() const {
    return static_cast<const T*>(data);
  }
  int64_t size() const { return rows * cols; }
  size_t bytes() const { return static_cast<size_t>(size()) * (dtype == DType::f64 ? sizeof(double) : sizeof(float)); }
};

// The one dtype dispatch: calls f(float{}) or f(double{}), so both instantiations share one name.
template <class F>
decltype(auto) dispatch_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32:
      return std::forward<F>(f)(float{});
    case DType::f64:
      return std::forward<F>(f)(double{});
  }
  throw std::invalid_argument("X: dtype must be float32 or float64");
}

// DType from the 0/1 code the Python side passes.
inline DType dtype_from_code(int code) {
  if (code == 0) return DType::f32;
  if (code == 1) return DType::f64;
  throw std::invalid_argument("X: dtype must be float32 (0) or float64 (1)");
}

}  // namespace swnas
