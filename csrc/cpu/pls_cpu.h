// Declares the PLS-VIP passes over X on the CPU (pls_cpu.cpp): plain C++, no Python types.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/matrix_view.h"

namespace swnas {
namespace cpu {

// One statistics pass (docs/scorers.md, sections 1-2), float64: column sums, centred sums of
// squares, class sums (C x p, row-major) and class counts, of X * scale; absmax = max |x| of the
// unscaled float64 X (-1 for float32 X, whose squares always fit a float64).
struct PlsStats {
  std::vector<double> colsum, sq, class_sums, counts;
  double absmax = -1.0;
};

// One projection: with t = X v - c, g = X't, tsum = sum(t), tt = t't. Without the loading (the
// last component, whose X't kernel PLS never uses) g is empty and the pass only takes dot products.
struct PlsProjection {
  std::vector<double> g;
  double tsum = 0.0, tt = 0.0;
};

// `parallel`: split the rows over the OpenMP threads (else run on the calling thread). The rows are
// summed in a fixed number of groups, in order: results do not depend on the thread count.
// `scale` (a power of two) multiplies every value before it is summed or squared.
PlsStats pls_stats(const MatrixView& X, const int32_t* codes, int64_t n_classes, bool parallel, double scale = 1.0);
PlsProjection pls_project(const MatrixView& X, const double* v, double c, bool parallel, bool loading = true);

// Many problems: one thread per problem (`across_problems`) or each problem's rows split over the
// threads in turn; identical results either way.
std::vector<PlsStats> pls_stats_many(const std::vector<MatrixView>& Xs, const std::vector<const int32_t*>& codes,
                                     const std::vector<int64_t>& n_classes, const std::vector<double>& scales,
                                     bool across_problems);
std::vector<PlsProjection> pls_project_many(const std::vector<MatrixView>& Xs, const std::vector<const double*>& vs,
                                            const std::vector<double>& cs, bool across_problems, bool loading = true);

// "problems", "rows" or "auto" (problems when there are at least as many as threads); throws
// std::invalid_argument naming `parallel` otherwise.
bool pls_across_problems(const std::string& mode, size_t n_problems);

// The product with the Gram matrix of the p x c row-major float64 matrix s (kernel PLS's X'Y, whose
// dominant direction Lanczos iteration finds at many classes): right: out (c) = s's x (x has c
// entries, one read of s); else out (p) = s s'x (x has p entries, two reads). Threads over the rows;
// the result does not depend on the thread count.
void pls_gram_matvec(const double* s, int64_t p, int64_t c, const double* x, bool right, double* out);

// The benchmarks' memory floor: the sum of every element of X in one streaming read.
double stream_read(const MatrixView& X);

}  // namespace cpu
}  // namespace swnas
