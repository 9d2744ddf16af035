// CUDA plumbing shared by every kernel file: error checks, a device guard and the one RAII device buffer.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#define SWNAS_CUDA_CHECK(expr)                                                                                  \
  do {                                                                                                          \
    cudaError_t swnas_err__ = (expr);                                                                           \
    if (swnas_err__ != cudaSuccess) {                                                                           \
      throw std::runtime_error(std::string("CUDA error in ") + #expr + ": " + cudaGetErrorString(swnas_err__)); \
    }                                                                                                           \
  } while (0)

namespace swnas {
namespace cuda {

// Makes `device` current for the lifetime of the guard.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    SWNAS_CUDA_CHECK(cudaGetDevice(&prev_));
    if (prev_ != device) SWNAS_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(prev_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
};

// `count` elements of T in device memory, freed when the buffer goes out of scope (also when an
// exception unwinds past it). Movable, not copyable. Given a stream, the buffer is stream-ordered
// (cudaMallocAsync / cudaFreeAsync on that stream): neither call waits for the device, so a
// scorer's temporaries do not stall other streams (DDP's); the stream must outlive the buffer.
// Without a stream, or where the device has no memory pools, it is plain cudaMalloc / cudaFree.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count > 0) SWNAS_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T)));
  }
  DeviceBuffer(size_t count, cudaStream_t stream) : count_(count) {
    if (count == 0) return;
    cudaError_t err = cudaMallocAsync(reinterpret_cast<void**>(&ptr_), count * sizeof(T), stream);
    if (err == cudaErrorNotSupported) {  // no stream-ordered allocator on this device or driver
      cudaGetLastError();                // reset the runtime's last-error record
      ptr_ = nullptr;
      SWNAS_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T)));
      return;
    }
    SWNAS_CUDA_CHECK(err);
    stream_ = stream;
    ordered_ = true;
  }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)),
        count_(std::exchange(o.count_, 0)),
        stream_(std::exchange(o.stream_, nullptr)),
        ordered_(std::exchange(o.ordered_, false)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      count_ = std::exchange(o.count_, 0);
      stream_ = std::exchange(o.stream_, nullptr);
      ordered_ = std::exchange(o.ordered_, false);
    }
    return *this;
  }

  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }
  void zero_async(cudaStream_t stream) {
    if (ptr_) SWNAS_CUDA_CHECK(cudaMemsetAsync(ptr_, 0, bytes(), stream));
  }

 private:
  void release() {
    if (ptr_) {
      if (ordered_)
        cudaFreeAsync(ptr_, stream_);  // after the work queued on stream_ so far
      else
        cudaFree(ptr_);
    }
    ptr_ = nullptr;
    count_ = 0;
    stream_ = nullptr;
    ordered_ = false;
  }
  T* ptr_ = nullptr;
  size_t count_ = 0;
  cudaStream_t stream_ = nullptr;
  bool ordered_ = false;
};

// Streaming multiprocessors of `device` (at least 1).
inline int sm_count(int device) {
  int sms = 0;
  SWNAS_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms > 0 ? sms : 1;
}

// Blocks of `kernel` (with `threads` threads and `smem` dynamic shared bytes) that fit on one SM at once.
template <class Kernel>
int resident_blocks_per_sm(Kernel kernel, int threads, size_t smem = 0) {
  int blocks = 0;
  SWNAS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, smem));
  return blocks > 0 ? blocks : 1;
}

// Makes `waiter` wait (on the device, without blocking the host) for the work queued so far on
// `producer`; a no-op when they are the same stream.
inline void stream_wait(cudaStream_t waiter, cudaStream_t producer) {
  if (waiter == producer) return;
  cudaEvent_t ev = nullptr;
  SWNAS_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  cudaError_t err = cudaEventRecord(ev, producer);
  if (err == cudaSuccess) err = cudaStreamWaitEvent(waiter, ev, 0);
  cudaEventDestroy(ev);
  SWNAS_CUDA_CHECK(err);
}

}  // namespace cuda
}  // namespace swnas
