// The one pybind11 entry point of the CUDA module; it links no PyTorch and the CUDA runtime statically.
#include <cuda_runtime.h>
#include <string>
#include "bindings/registry.h"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "swnas CUDA kernels for the feature-importance scorers";
  m.def(
      "device_count",
      []() {
        int n = 0;
        cudaError_t err = cudaGetDeviceCount(&n);
        if (err != cudaSuccess) {
          cudaGetLastError();
          return 0;
        }
        return n;
      },
      "Number of visible CUDA devices (0 when there is no driver or no GPU)");
  m.def(
      "device_error",
      []() {
        int n = 0;
        cudaError_t err = cudaGetDeviceCount(&n);
        if (err != cudaSuccess) {
          cudaGetLastError();
          return std::string(cudaGetErrorString(err));
        }
        if (n == 0) return std::string("no CUDA device is visible");
        return std::string();
      },
      "Why no CUDA device can be used ('' when one can)");
  m.def(
      "device_name",
      [](int dev) {
        cudaDeviceProp prop;
        cudaError_t err = cudaGetDeviceProperties(&prop, dev);
        if (err != cudaSuccess) throw std::runtime_error(cudaGetErrorString(err));
        return std::string(prop.name);
      },
      py::arg("device") = 0);
  swnas::register_pls_cuda(m);
  swnas::register_inffs_cuda(m);
  swnas::register_ilfs_cuda(m);
}
