// Tensor: a shape, a dtype, a device and refcounted contiguous storage (NCHW by default).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/device.h"
#include "host/dtype.h"

namespace safnet {

using Shape = std::vector<std::int64_t>;

std::int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "(2, 3, 4)"

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled, 64-byte aligned host storage.
  Tensor(Shape shape, DType dtype = DType::f32());
  // Storage a backend allocated on `device` (freed by the shared pointer's deleter).
  Tensor(Shape shape, DType dtype, Device device, std::shared_ptr<std::byte[]> storage);

  const Shape& shape() const { return shape_; }
  std::int64_t dim(int i) const { return shape_.at(static_cast<std::size_t>(i < 0 ? i + static_cast<int>(shape_.size()) : i)); }
  int ndim() const { return static_cast<int>(shape_.size()); }
  DType dtype() const { return dtype_; }
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_.size(); }
  bool defined() const { return static_cast<bool>(storage_); }
  const Device& device() const { return device_; }

  // Host memory only: reaching into a device tensor from host code is an error, caught here
  // (the simulator's device memory would otherwise be readable and hide the bug).
  void* raw() { require_host(); return storage_.get(); }
  const void* raw() const { require_host(); return storage_.get(); }
  template <typename T> T* data() { return static_cast<T*>(raw()); }
  template <typename T> const T* data() const { return static_cast<const T*>(raw()); }
  // The storage on whatever device it lives: for backends, which pass it to their kernels.
  void* device_raw() { return storage_.get(); }
  const void* device_raw() const { return storage_.get(); }
  template <typename T> T* device_data() { return static_cast<T*>(device_raw()); }
  template <typename T> const T* device_data() const { return static_cast<const T*>(device_raw()); }

  // A tensor of `shape` and `dtype` over `base`'s storage from `byte_offset` on (shares it).
  static Tensor view_of(const Tensor& base, Shape shape, DType dtype, std::size_t byte_offset = 0);
  // Same storage, new shape of the same element count.
  Tensor reshaped(Shape shape) const;
  // Deep copy (host tensors; backends copy device tensors).
  Tensor clone() const;
  void fill_zero();

 private:
  void require_host() const {
    if (!device_.is_cpu()) device_access_error();
  }
  [[noreturn]] void device_access_error() const;

  Shape shape_;
  DType dtype_;
  Device device_;
  std::shared_ptr<std::byte[]> storage_;
};

}  // namespace safnet
