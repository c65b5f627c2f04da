// Tensor: a shape, a dtype and refcounted contiguous host storage (NCHW by default).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/dtype.h"

namespace safnet {

using Shape = std::vector<std::int64_t>;

std::int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "(2, 3, 4)"

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled, 64-byte aligned storage.
  Tensor(Shape shape, DType dtype = DType::f32());

  const Shape& shape() const { return shape_; }
  std::int64_t dim(int i) const { return shape_.at(static_cast<std::size_t>(i < 0 ? i + static_cast<int>(shape_.size()) : i)); }
  int ndim() const { return static_cast<int>(shape_.size()); }
  DType dtype() const { return dtype_; }
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_.size(); }
  bool defined() const { return static_cast<bool>(storage_); }

  void* raw() { return storage_.get(); }
  const void* raw() const { return storage_.get(); }
  template <typename T> T* data() { return static_cast<T*>(raw()); }
  template <typename T> const T* data() const { return static_cast<const T*>(raw()); }

  // A tensor of `shape` and `dtype` over the first bytes of `base`'s storage (shares it).
  static Tensor view_of(const Tensor& base, Shape shape, DType dtype);
  // Same storage, new shape of the same element count.
  Tensor reshaped(Shape shape) const;
  // Deep copy.
  Tensor clone() const;
  void fill_zero();

 private:
  Shape shape_;
  DType dtype_;
  std::shared_ptr<std::byte[]> storage_;
};

}  // namespace safnet
