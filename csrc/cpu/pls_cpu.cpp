// CPU kernels for PLS-VIP (filled in by the foundation issue); registers its functions on _core.
#include "swnas/bindings.h"

namespace swnas {
void register_pls_cpu(pybind11::module_& m) { (void)m; }
}  // namespace swnas
