// Shared CUDA error handling for the host wrappers in csrc/cuda/: turns CUDA errors into C++ exceptions.
#pragma once
#include <cuda_runtime.h>
#include <stdexcept>
#include <string>

#define SWNAS_CUDA_CHECK(expr)                                                            \
  do {                                                                                    \
    cudaError_t swnas_err__ = (expr);                                                     \
    if (swnas_err__ != cudaSuccess) {                                                     \
      throw std::runtime_error(std::string("CUDA error in ") + #expr + ": " +            \
                               cudaGetErrorString(swnas_err__));                          \
    }                                                                                     \
  } while (0)
