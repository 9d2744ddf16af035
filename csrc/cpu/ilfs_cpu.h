// Declares il-FS on the CPU (ilfs_cpu.cpp): plain C++, no Python types.
#pragma once
#include <cstdint>

#include "common/ilfs_math.h"
#include "common/matrix_view.h"

namespace swnas {
namespace cpu {

// il-FS of one problem (docs/scorers.md, section 4): class means and token counts (OpenMP over
// feature blocks when `parallel`), then the PLSA EM and the closed form. y: int32 labels in 0..nc-1.
ilfs::Outcome ilfs_run(const MatrixView& X, const int32_t* y, int nc, int tt, int max_iter, double tol, bool parallel);

}  // namespace cpu
}  // namespace swnas
