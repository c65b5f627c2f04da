// Tensor storage and shape helpers.
#include "host/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

#include "host/check.h"

namespace safnet {

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "(";
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ")";
  return os.str();
}

Tensor::Tensor(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  for (auto d : shape_) SAFNET_CHECK(d >= 0, "negative dimension in ", shape_str(shape_));
  const std::size_t bytes = (nbytes() + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes ? bytes : 64);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, bytes ? bytes : 64);
  storage_ = std::shared_ptr<std::byte[]>(static_cast<std::byte*>(p), [](std::byte* q) { std::free(q); });
}

Tensor::Tensor(Shape shape, DType dtype, Device device, std::shared_ptr<std::byte[]> storage)
    : shape_(std::move(shape)), dtype_(dtype), device_(device), storage_(std::move(storage)) {}

void Tensor::device_access_error() const {
  fail("host code read a tensor ", shape_str(shape_), " that lives on ", device_.str());
}

Tensor Tensor::reshaped(Shape shape) const {
  SAFNET_CHECK(shape_numel(shape) == numel(), "reshape ", shape_str(shape_), " to ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::view_of(const Tensor& base, Shape shape, DType dtype, std::size_t byte_offset) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = base.device_;
  SAFNET_CHECK(byte_offset <= base.nbytes() && t.nbytes() <= base.nbytes() - byte_offset, "view of ", t.nbytes(),
               " bytes at ", byte_offset, " over ", base.nbytes());
  t.storage_ = std::shared_ptr<std::byte[]>(base.storage_, base.storage_.get() + byte_offset);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(shape_, dtype_);
  if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

void Tensor::fill_zero() {
  if (nbytes()) std::memset(raw(), 0, nbytes());
}

}  // namespace safnet
