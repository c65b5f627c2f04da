// Safetensors reader and writer: checkpoints, and weights imported from PyTorch.
//
// Format: 8-byte little-endian header length N, N bytes of JSON header
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {string: string}}
// then the byte buffer; offsets are relative to the buffer start.
//
// DType mapping: f32 <-> F32, f16 <-> F16, bf16 <-> BF16, i32 <-> I32, u8 <-> U8.
// fixed(m,n) is stored as I8 with metadata "safnet.dtype.<tensor name>" = DType::name()
// (e.g. "fixed2.5"); the reader consumes those keys, so `metadata` never shows them, and
// rejects an I8 tensor without one (the scale of plain int8 data is unknown) as well as a
// "safnet.dtype." key that does not name an I8 tensor with a fixed dtype. The writer
// rejects user metadata under that reserved prefix.
//
// Tensor has no 64-bit types, so on reading F64 becomes f32 (round to nearest; beyond the f32
// range gives +-inf, as torch's .float() does) and I64 becomes i32 (PyTorch's
// num_batches_tracked is I64); an I64 value outside the i32 range is an error. Any other
// safetensors dtype (BOOL, U16, F8_E4M3, ...) is an error naming the tensor and dtype.
//
// The reader is strict, as the reference implementation is: the buffer must be fully covered
// by the tensors, back to back with no holes, overlaps or trailing bytes; a name appearing
// twice in the header is an error. `tensors` lists tensors in buffer order (ties between empty
// tensors keep header order), which is the writer's order, so a written file reads back in the
// order it was given. A header whose "__metadata__" is null reads as empty metadata.
//
// The writer lays tensors back to back in the given order (no per-dtype alignment) and pads
// the header with spaces to a multiple of 8 bytes. Byte order: the host must be little-endian.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "host/tensor.h"

namespace safnet {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order (writer: in this order)
  std::map<std::string, std::string> metadata;

  const Tensor* find(const std::string& name) const;  // nullptr if absent
  // Throws naming the file and the tensor (and some of the names the file does have).
  const Tensor& at(const std::string& name, const std::string& path_for_errors) const;
};

// `path_for_errors` only names the source in error messages.
SafetensorsFile parse_safetensors(const std::uint8_t* data, std::size_t size,
                                  const std::string& path_for_errors);
SafetensorsFile read_safetensors(const std::string& path);

std::vector<std::uint8_t> serialize_safetensors(const SafetensorsFile& f);
// Atomic (temp file, fsync, rename), via write_file_atomic.
void write_safetensors(const std::string& path, const SafetensorsFile& f);

}  // namespace safnet
