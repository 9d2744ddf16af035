// pybind11 bindings of the PLS-VIP CPU passes (cpu/pls_cpu.h): NumPy views in, float64 statistics out.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/py_array.h"
#include "bindings/registry.h"
#include "cpu/pls_cpu.h"

namespace py = pybind11;

namespace swnas {
namespace {

using IntVec = py::array_t<int32_t, py::array::c_style>;
using DoubleVec = py::array_t<double, py::array::c_style>;

py::tuple stats_tuple(const cpu::PlsStats& r, int64_t C, int64_t p, bool with_absmax) {
  if (with_absmax)
    return py::make_tuple(vector_to_numpy(r.colsum), vector_to_numpy(r.sq), matrix_to_numpy(r.class_sums, C, p),
                          vector_to_numpy(r.counts), r.absmax);
  return py::make_tuple(vector_to_numpy(r.colsum), vector_to_numpy(r.sq), matrix_to_numpy(r.class_sums, C, p),
                        vector_to_numpy(r.counts));
}

// A power of two (or 1): the only scales that change no digit of the data.
void check_scale(double scale, const std::string& name) {
  int e = 0;
  if (!(scale > 0.0) || !std::isfinite(scale) || std::frexp(scale, &e) != 0.5)
    throw py::value_error(name + ": must be a positive power of two");
}

// g is None for a pass without the loading (loading=False).
py::tuple projection_tuple(const cpu::PlsProjection& r, bool loading) {
  if (!loading) return py::make_tuple(py::none(), r.tsum, r.tt);
  return py::make_tuple(vector_to_numpy(r.g), r.tsum, r.tt);
}

void check_codes(const IntVec& codes, const MatrixView& m, int64_t C, const std::string& name) {
  if (codes.ndim() != 1 || codes.shape(0) != m.rows)
    throw py::value_error(name + ": codes must be a 1-D int32 vector with one label per row of X");
  if (C < 1) throw py::value_error(name + ": n_classes must be positive");
  const int32_t* c = codes.data();
  for (int64_t i = 0; i < m.rows; ++i)
    if (c[i] < 0 || c[i] >= C) throw py::value_error(name + ": codes must lie in 0..n_classes-1");
}

void check_vector(const DoubleVec& v, const MatrixView& m, const std::string& name) {
  if (v.ndim() != 1 || v.shape(0) != m.cols)
    throw py::value_error(name + ": must be a float64 vector with one entry per column of X");
}

std::string problem(size_t i) {
  return "problems[" + std::to_string(i) + "]";
}

py::tuple stats(py::array X, IntVec codes, int64_t n_classes, double scale, bool with_absmax) {
  const MatrixView m = view_matrix(X, "X");
  check_codes(codes, m, n_classes, "codes");
  check_scale(scale, "scale");
  cpu::PlsStats r;
  {
    py::gil_scoped_release nogil;
    r = cpu::pls_stats(m, codes.data(), n_classes, true, scale);
  }
  return stats_tuple(r, n_classes, m.cols, with_absmax);
}

py::tuple project(py::array X, DoubleVec v, double c, bool loading) {
  const MatrixView m = view_matrix(X, "X");
  check_vector(v, m, "v");
  cpu::PlsProjection r;
  {
    py::gil_scoped_release nogil;
    r = cpu::pls_project(m, v.data(), c, true, loading);
  }
  return projection_tuple(r, loading);
}

py::list stats_many(const std::vector<py::array>& Xs, const std::vector<IntVec>& codes,
                    const std::vector<int64_t>& n_classes, const std::string& parallel, std::vector<double> scales,
                    bool with_absmax) {
  if (codes.size() != Xs.size() || n_classes.size() != Xs.size())
    throw py::value_error("pls_stats_many: Xs, codes and n_classes must have the same length");
  if (scales.empty()) scales.assign(Xs.size(), 1.0);
  if (scales.size() != Xs.size()) throw py::value_error("scales: must hold one scale per problem");
  for (size_t i = 0; i < scales.size(); ++i) check_scale(scales[i], "scales[" + std::to_string(i) + "]");
  std::vector<MatrixView> ms;
  std::vector<const int32_t*> cp;
  for (size_t i = 0; i < Xs.size(); ++i) {
    ms.push_back(view_matrix(Xs[i], problem(i) + ".X"));
    check_codes(codes[i], ms.back(), n_classes[i], problem(i) + ".codes");
    cp.push_back(codes[i].data());
  }
  const bool by_problem = cpu::pls_across_problems(parallel, Xs.size());
  std::vector<cpu::PlsStats> rs;
  {
    py::gil_scoped_release nogil;
    rs = cpu::pls_stats_many(ms, cp, n_classes, scales, by_problem);
  }
  py::list out;
  for (size_t i = 0; i < rs.size(); ++i) out.append(stats_tuple(rs[i], n_classes[i], ms[i].cols, with_absmax));
  return out;
}

py::list project_many(const std::vector<py::array>& Xs, const std::vector<DoubleVec>& vs, const std::vector<double>& cs,
                      const std::string& parallel, bool loading) {
  if (vs.size() != Xs.size() || cs.size() != Xs.size())
    throw py::value_error("pls_project_many: Xs, vs and cs must have the same length");
  std::vector<MatrixView> ms;
  std::vector<const double*> vp;
  for (size_t i = 0; i < Xs.size(); ++i) {
    ms.push_back(view_matrix(Xs[i], problem(i) + ".X"));
    check_vector(vs[i], ms.back(), problem(i) + ".v");
    vp.push_back(vs[i].data());
  }
  const bool by_problem = cpu::pls_across_problems(parallel, Xs.size());
  std::vector<cpu::PlsProjection> rs;
  {
    py::gil_scoped_release nogil;
    rs = cpu::pls_project_many(ms, vp, cs, by_problem, loading);
  }
  py::list out;
  for (const auto& r : rs) out.append(projection_tuple(r, loading));
  return out;
}

DoubleVec gram_matvec(const py::array_t<double, py::array::c_style>& s, const DoubleVec& x, bool right) {
  if (s.ndim() != 2) throw py::value_error("s: must be a 2-D C-contiguous float64 matrix");
  const int64_t p = s.shape(0), c = s.shape(1);
  if (x.ndim() != 1 || x.shape(0) != (right ? c : p))
    throw py::value_error(right ? "x: must be a float64 vector with one entry per column of s (right=True: s's x)"
                                : "x: must be a float64 vector with one entry per row of s (right=False: s s'x)");
  DoubleVec out(right ? c : p);
  {
    py::gil_scoped_release nogil;
    cpu::pls_gram_matvec(s.data(), p, c, x.data(), right, out.mutable_data());
  }
  return out;
}

double stream_read(py::array X) {
  const MatrixView m = view_matrix(X, "X");
  py::gil_scoped_release nogil;
  return cpu::stream_read(m);
}

}  // namespace

void register_pls_cpu(py::module_& m) {
  m.def("pls_stats", &stats, py::arg("X"), py::arg("codes"), py::arg("n_classes"), py::arg("scale") = 1.0,
        py::arg("with_absmax") = false,
        "One pass over X (float32/float64, C-contiguous, not copied): (colsum, centred sum of squares, "
        "class_sums (C x p), counts), all float64, of X * scale (a power of two); with_absmax appends "
        "max |X| of float64 X (-1 for float32).");
  m.def("pls_project", &project, py::arg("X"), py::arg("v"), py::arg("c"), py::arg("loading") = true,
        "One fused pass over X: with t = X v - c, returns (X't, sum(t), t't); loading=False skips X't "
        "(returned as None) and only takes the dot products.");
  m.def("pls_stats_many", &stats_many, py::arg("Xs"), py::arg("codes"), py::arg("n_classes"),
        py::arg("parallel") = "auto", py::arg("scales") = std::vector<double>{}, py::arg("with_absmax") = false,
        "pls_stats for many problems in one call (scales: one per problem, default all 1).");
  m.def("pls_project_many", &project_many, py::arg("Xs"), py::arg("vs"), py::arg("cs"), py::arg("parallel") = "auto",
        py::arg("loading") = true, "pls_project for many problems in one call.");
  m.def("pls_gram_matvec", &gram_matvec, py::arg("s"), py::arg("x"), py::arg("right"),
        "right=True: s's x (x has one entry per column of s; one read of s); False: s s'x; s float64 p x c, "
        "C-contiguous; threads over rows, independent of the thread count.");
  m.def("pls_stream_read", &stream_read, py::arg("X"),
        "Sum of every element of X in one streaming read (the benchmarks' memory-bandwidth floor).");
}

}  // namespace swnas
