// pybind11 bindings of the PLS-VIP CUDA passes (cuda/pls_cuda.h): GPU matrices, borrowed or uploaded once.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bindings/py_array.h"
#include "bindings/registry.h"
#include "cuda/pls_cuda.h"

namespace py = pybind11;

namespace swnas {
namespace {

// A GPU matrix plus the Python object that owns its memory. The owner is declared first so that it
// is destroyed last: the matrix (whose destructor waits for its stream) goes before the memory it reads.
struct PyMatrix {
  py::object owner;
  std::unique_ptr<cuda::PlsMatrix> m;
};

py::tuple stats_tuple(const cuda::PlsStats& s, int64_t C, int64_t p) {
  return py::make_tuple(vector_to_numpy(s.colsum), vector_to_numpy(s.sq), matrix_to_numpy(s.class_sums, C, p),
                        vector_to_numpy(s.counts));
}

// g is None for a projection without the loading (loading=False).
py::tuple projection_tuple(const cuda::PlsProjection& r, bool loading) {
  if (!loading) return py::make_tuple(py::none(), r.tsum, r.tt);
  return py::make_tuple(vector_to_numpy(r.g), r.tsum, r.tt);
}

std::unique_ptr<PyMatrix> from_device(std::uintptr_t ptr, int64_t n, int64_t p, bool is_double, int device,
                                      py::object owner, std::uintptr_t stream) {
  if (ptr == 0) throw py::value_error("X: null device pointer");
  if (device < 0) throw py::value_error("device: must be a CUDA device index");
  const MatrixView view{reinterpret_cast<const void*>(ptr), n, p, is_double ? DType::f64 : DType::f32, device};
  auto out = std::make_unique<PyMatrix>();
  out->owner = std::move(owner);
  {
    py::gil_scoped_release nogil;
    out->m = std::make_unique<cuda::PlsMatrix>(view, stream);
  }
  return out;
}

std::unique_ptr<PyMatrix> from_host(py::array X, int device) {
  const MatrixView view = view_matrix(X, "X");
  auto out = std::make_unique<PyMatrix>();
  {
    py::gil_scoped_release nogil;
    out->m = cuda::PlsMatrix::from_host(view, device);
  }
  return out;
}

void check_codes(const py::array_t<int32_t, py::array::c_style>& codes, const cuda::PlsMatrix& m) {
  if (codes.ndim() != 1 || codes.shape(0) != m.view().rows)
    throw py::value_error("codes: must be a 1-D int32 vector with one label per row of X");
}

void check_vector(const py::array_t<double, py::array::c_style>& v, const cuda::PlsMatrix& m) {
  if (v.ndim() != 1 || v.shape(0) != m.view().cols)
    throw py::value_error("v: must be a float64 vector with one entry per column of X");
}

}  // namespace

void register_pls_cuda(py::module_& m) {
  py::class_<PyMatrix>(m, "PlsMatrix", "An N x p float32/float64 matrix on a GPU with the workspace of the PLS passes")
      .def_property_readonly(
          "shape", [](const PyMatrix& self) { return py::make_tuple(self.m->view().rows, self.m->view().cols); })
      .def_property_readonly("device", [](const PyMatrix& self) { return self.m->view().device; })
      .def_property_readonly("is_double", [](const PyMatrix& self) { return self.m->view().dtype == DType::f64; })
      .def(
          "stats",
          [](PyMatrix& self, py::array_t<int32_t, py::array::c_style> codes, int64_t n_classes) {
            check_codes(codes, *self.m);
            cuda::PlsStats s;
            {
              py::gil_scoped_release nogil;
              s = self.m->stats(codes.data(), n_classes);
            }
            return stats_tuple(s, n_classes, self.m->view().cols);
          },
          py::arg("codes"), py::arg("n_classes"),
          "One pass: (colsum, centred sum of squares, class_sums (C x p), counts), float64 on the host.")
      .def(
          "project",
          [](PyMatrix& self, py::array_t<double, py::array::c_style> v, double c, bool loading) {
            check_vector(v, *self.m);
            cuda::PlsProjection r;
            {
              py::gil_scoped_release nogil;
              r = self.m->project(v.data(), c, loading);
            }
            return projection_tuple(r, loading);
          },
          py::arg("v"), py::arg("c"), py::arg("loading") = true,
          "With t = X v - c: (X't, sum(t), t't); loading=False skips the X't kernel (None).");
  m.def("pls_matrix_from_device", &from_device, py::arg("ptr"), py::arg("n"), py::arg("p"), py::arg("is_double"),
        py::arg("device"), py::arg("owner"), py::arg("stream") = 0,
        "Borrow a C-contiguous device matrix (torch data_ptr() or __cuda_array_interface__); owner is kept alive. "
        "The passes first wait for the work queued on `stream` (the producer's current stream).");
  m.def("pls_matrix_from_host", &from_host, py::arg("X"), py::arg("device") = 0,
        "Copy a C-contiguous host matrix to the GPU once.");
  m.def(
      "pls_stats_many",
      [](const std::vector<PyMatrix*>& ms, const std::vector<py::array_t<int32_t, py::array::c_style>>& codes,
         const std::vector<int64_t>& n_classes) {
        if (codes.size() != ms.size() || n_classes.size() != ms.size())
          throw py::value_error("pls_stats_many: matrices, codes and n_classes must have the same length");
        for (size_t k = 0; k < ms.size(); ++k) {
          if (ms[k] == nullptr) throw py::value_error("pls_stats_many: None matrix");
          check_codes(codes[k], *ms[k]->m);
        }
        std::vector<cuda::PlsStats> rs(ms.size());
        {
          py::gil_scoped_release nogil;
          for (size_t k = 0; k < ms.size(); ++k) rs[k] = ms[k]->m->stats(codes[k].data(), n_classes[k]);
        }
        py::list out;
        for (size_t k = 0; k < ms.size(); ++k) out.append(stats_tuple(rs[k], n_classes[k], ms[k]->m->view().cols));
        return out;
      },
      py::arg("matrices"), py::arg("codes"), py::arg("n_classes"), "The statistics pass of every matrix, in turn.");
  m.def(
      "pls_project_many",
      [](const std::vector<PyMatrix*>& ms, const std::vector<py::array_t<double, py::array::c_style>>& vs,
         const std::vector<double>& cs, bool loading) {
        if (vs.size() != ms.size() || cs.size() != ms.size())
          throw py::value_error("pls_project_many: matrices, vs and cs must have the same length");
        std::vector<cuda::PlsMatrix*> raw;
        std::vector<const double*> vp;
        for (size_t k = 0; k < ms.size(); ++k) {
          if (ms[k] == nullptr) throw py::value_error("pls_project_many: None matrix");
          check_vector(vs[k], *ms[k]->m);
          raw.push_back(ms[k]->m.get());
          vp.push_back(vs[k].data());
        }
        std::vector<cuda::PlsProjection> rs;
        {
          py::gil_scoped_release nogil;
          rs = cuda::pls_project_many(raw, vp, cs, loading);
        }
        py::list out;
        for (const auto& r : rs) out.append(projection_tuple(r, loading));
        return out;
      },
      py::arg("matrices"), py::arg("vs"), py::arg("cs"), py::arg("loading") = true,
      "One projection per matrix, all enqueued (one stream each) before any is awaited.");
}

}  // namespace swnas
