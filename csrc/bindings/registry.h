// Declares the per-concern registration functions that the two pybind11 modules call.
#pragma once
#include <pybind11/pybind11.h>

namespace swnas {
// CPU core (_core): each is defined in csrc/bindings/<name>.cpp over csrc/cpu/<name>_cpu.h
// (kernels in csrc/cpu/<name>_cpu.cpp, namespace swnas::cpu).
void register_pls_cpu(pybind11::module_& m);
void register_inffs_cpu(pybind11::module_& m);
void register_ilfs_cpu(pybind11::module_& m);
// CUDA module (_cuda): each is defined in csrc/bindings/<name>_cuda.cpp over csrc/cuda/<name>_cuda.h
// (kernels in namespace swnas::cuda).
void register_pls_cuda(pybind11::module_& m);
void register_inffs_cuda(pybind11::module_& m);
void register_ilfs_cuda(pybind11::module_& m);
}  // namespace swnas
