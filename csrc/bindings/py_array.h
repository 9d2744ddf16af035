// NumPy <-> C++ helpers shared by every pybind11 binding: matrix views of arrays and small results back.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common/matrix_view.h"

namespace swnas {

// A MatrixView of a C-contiguous 2-D float32/float64 host array (not copied); clear errors naming `name`.
inline MatrixView view_matrix(const pybind11::array& X, const std::string& name, bool allow_empty = false) {
  namespace py = pybind11;
  if (X.ndim() != 2) throw py::value_error(name + ": expected a 2-D matrix");
  if (!(X.flags() & py::array::c_style)) throw py::value_error(name + ": must be C-contiguous (row-major)");
  MatrixView m;
  // dtype equality (NumPy's EquivTypes: native float32/float64), not object identity: unpickled and
  // memory-mapped arrays carry equal but distinct dtype objects
  if (py::isinstance<py::array_t<float>>(X)) {
    m.dtype = DType::f32;
  } else if (py::isinstance<py::array_t<double>>(X)) {
    m.dtype = DType::f64;
  } else {
    throw py::value_error(name + ": dtype must be float32 or float64");
  }
  m.data = X.data();
  m.rows = X.shape(0);
  m.cols = X.shape(1);
  if (!allow_empty && (m.rows < 1 || m.cols < 1)) throw py::value_error(name + ": is empty");
  return m;
}

// A 1-D float64 NumPy array holding a copy of `v`.
inline pybind11::array_t<double> vector_to_numpy(const std::vector<double>& v) {
  pybind11::array_t<double> out(static_cast<pybind11::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

// A (rows, cols) float64 NumPy array holding a copy of the row-major `v`.
inline pybind11::array_t<double> matrix_to_numpy(const std::vector<double>& v, int64_t rows, int64_t cols) {
  pybind11::array_t<double> out({static_cast<pybind11::ssize_t>(rows), static_cast<pybind11::ssize_t>(cols)});
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

}  // namespace swnas
