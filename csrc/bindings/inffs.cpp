// pybind11 bindings of inf-FS on the CPU (cpu/inffs_cpu.h): ranks, the solve, lambda_max.
#include <pybind11/numpy.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <vector>

#include "bindings/py_array.h"
#include "bindings/registry.h"
#include "cpu/inffs_cpu.h"

namespace py = pybind11;

namespace swnas {
namespace {

py::tuple transform(py::array X, bool spearman) {
  const MatrixView m = view_matrix(X, "X", true);
  if (m.rows >= (int64_t(1) << 32)) throw std::invalid_argument("X: too many rows for the ranking kernel");
  py::array Z(X.dtype(), {m.rows, m.cols});
  py::array_t<double> sd(m.cols);
  void* z = Z.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::inffs_column_transform(m, spearman, z, sd.mutable_data());
  }
  return py::make_tuple(Z, sd);
}

py::tuple transform_t_f32_py(py::array_t<float, py::array::c_style> X) {
  if (X.ndim() != 2) throw std::invalid_argument("X: expected a 2-D matrix");
  const int64_t n = X.shape(0), p = X.shape(1);
  if (n >= (int64_t(1) << 32)) throw std::invalid_argument("X: too many rows for the ranking kernel");
  if (n < 2 || p < 1) throw std::invalid_argument("X: expected at least 2 rows and 1 column");
  // Zt lives in its own anonymous mapping with transparent huge pages refused: NumPy's allocator asks
  // for huge pages on large arrays, and on VMs the synchronous compaction behind them costs more than
  // the ranking; the sorting threads fault the 4 KiB pages in, in parallel, as they write.
  struct Region {
    void* ptr;
    size_t bytes;
  };
  const size_t bytes = sizeof(float) * size_t(n) * size_t(p);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_NOHUGEPAGE
  madvise(mem, bytes, MADV_NOHUGEPAGE);
#endif
  py::capsule owner(new Region{mem, bytes}, [](void* r) {
    auto* reg = static_cast<Region*>(r);
    munmap(reg->ptr, reg->bytes);
    delete reg;
  });
  py::array_t<float> Zt({p, n}, {int64_t(sizeof(float)) * n, int64_t(sizeof(float))}, static_cast<float*>(mem), owner);
  py::array_t<double> sd(p);
  {
    py::gil_scoped_release nogil;
    cpu::inffs_spearman_transposed_f32(X.data(), n, p, Zt.mutable_data(), sd.mutable_data());
  }
  return py::make_tuple(Zt, sd);
}

py::array_t<double> solve(py::array G, py::array_t<double, py::array::c_style> sd, double alpha, double factor) {
  const MatrixView g = view_matrix(G, "G", true);
  const int64_t p = sd.shape(0);
  if (g.rows != p || g.cols != p) throw std::invalid_argument("G: expected p x p");
  std::vector<double> x;
  {
    py::gil_scoped_release nogil;
    x = cpu::inffs_solve(g, sd.data(), alpha, factor);
  }
  return vector_to_numpy(x);
}

}  // namespace

void register_inffs_cpu(py::module_& m) {
  m.def("inffs_transform", &transform, py::arg("X"), py::arg("spearman"),
        "Centred average ranks (spearman) or centred values in X's dtype, and the ddof=1 column std");
  m.def("inffs_transform_t_f32", &transform_t_f32_py, py::arg("X"),
        "Centred average ranks of a float32 X, transposed (p x n), and the ddof=1 column std");
  m.def("inffs_solve", &solve, py::arg("G"), py::arg("std"), py::arg("alpha"), py::arg("factor"),
        "inf-FS scores from the Gram matrix (float32/float64) of centred columns (lower triangle read)");
  m.def(
      "inffs_lambda_max",
      [](py::array_t<double, py::array::c_style> A) {
        const int64_t p = A.shape(0);
        py::gil_scoped_release nogil;
        return cpu::lanczos_max_eig(A.data(), p);
      },
      py::arg("A"), "Largest eigenvalue of a symmetric matrix (Lanczos, full reorthogonalisation)");
}

}  // namespace swnas
