// Safetensors parsing (strict validation) and serialization.
#include "host/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "host/check.h"
#include "host/file_io.h"

namespace safnet {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is copied without byte swapping");

namespace {

using json = nlohmann::json;

// The reference implementation's limit: a larger header is taken as a corrupt length.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";
const std::string kDtypeKeyPrefix = "safnet.dtype.";

// A header entry after type checks, before its bytes are converted.
struct Entry {
  std::string name;
  std::string dtype;  // safetensors spelling, e.g. "F32"
  Shape shape;
  std::int64_t numel = 0;
  std::uint64_t begin = 0, end = 0;
  std::size_t header_index = 0;  // breaks ties between empty tensors at one offset
};

// Bytes per element of the safetensors dtypes we read; 0 for any other.
std::size_t file_dtype_size(const std::string& d) {
  if (d == "F32" || d == "I32") return 4;
  if (d == "F16" || d == "BF16") return 2;
  if (d == "U8" || d == "I8") return 1;
  if (d == "F64" || d == "I64") return 8;
  return 0;
}

const char* file_dtype_of(DType d) {
  switch (d.kind) {
    case DType::Kind::f32: return "F32";
    case DType::Kind::f16: return "F16";
    case DType::Kind::bf16: return "BF16";
    case DType::Kind::fixed: return "I8";
    case DType::Kind::u8: return "U8";
    case DType::Kind::i32: return "I32";
  }
  return "?";
}

// DType for the directly mapped safetensors dtypes (I8 needs its metadata key).
DType dtype_of_file(const std::string& d) {
  if (d == "F32" || d == "F64") return DType::f32();
  if (d == "F16") return DType::f16();
  if (d == "BF16") return DType::bf16();
  if (d == "I32" || d == "I64") return DType::i32();
  return DType::u8();
}

std::uint64_t read_u64_le(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A non-negative JSON integer; `what` names it in the error.
std::uint64_t json_uint(const json& j, const std::string& path, const std::string& what) {
  if (j.is_number_unsigned()) return j.get<std::uint64_t>();
  if (j.is_number_integer()) {
    const auto v = j.get<std::int64_t>();
    if (v == 0) return 0;  // "-0"
    fail(path, ": ", what, " is negative (", v, ")");
  }
  fail(path, ": ", what, " is not an integer");
}

Entry parse_entry(const std::string& name, const json& j, std::size_t index, const std::string& path) {
  const std::string where = "tensor '" + name + "'";
  if (!j.is_object()) fail(path, ": ", where, " is not a JSON object");
  Entry e;
  e.name = name;
  e.header_index = index;

  const auto dt = j.find("dtype");
  if (dt == j.end()) fail(path, ": ", where, " has no \"dtype\"");
  if (!dt->is_string()) fail(path, ": ", where, ": \"dtype\" is not a string");
  e.dtype = dt->get<std::string>();
  const std::size_t esize = file_dtype_size(e.dtype);
  if (esize == 0)
    fail(path, ": ", where, " has unsupported dtype '", e.dtype,
         "' (readable: F32 F16 BF16 I32 U8 I8 F64 I64)");

  const auto sh = j.find("shape");
  if (sh == j.end()) fail(path, ": ", where, " has no \"shape\"");
  if (!sh->is_array()) fail(path, ": ", where, ": \"shape\" is not an array");
  // Every partial product must fit, so that shape_numel() cannot overflow either.
  std::int64_t numel = 1;
  for (const json& d : *sh) {
    const std::uint64_t v = json_uint(d, path, where + " shape dimension");
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
        __builtin_mul_overflow(numel, static_cast<std::int64_t>(v), &numel))
      fail(path, ": ", where, ": shape ", sh->dump(), " has too many elements");
    e.shape.push_back(static_cast<std::int64_t>(v));
  }
  e.numel = numel;

  const auto off = j.find("data_offsets");
  if (off == j.end()) fail(path, ": ", where, " has no \"data_offsets\"");
  if (!off->is_array() || off->size() != 2)
    fail(path, ": ", where, ": \"data_offsets\" is not an array [begin, end]");
  e.begin = json_uint((*off)[0], path, where + " data_offsets begin");
  e.end = json_uint((*off)[1], path, where + " data_offsets end");
  if (e.begin > e.end) fail(path, ": ", where, ": data_offsets [", e.begin, ", ", e.end, "] has begin > end");

  std::uint64_t nbytes = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel), esize, &nbytes) ||
      e.end - e.begin != nbytes)
    fail(path, ": ", where, ": data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin,
         " bytes but ", e.dtype, " shape ", shape_str(e.shape), " needs ", numel, " x ", esize);
  return e;
}

// The reference rule: tensors tile the buffer exactly, back to back.
void check_layout(std::vector<Entry>& entries, std::uint64_t buffer_size, const std::string& path) {
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.end > buffer_size)
      fail(path, ": tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
           "] run past the ", buffer_size, "-byte data buffer");
    if (e.begin < pos)
      fail(path, ": tensor '", e.name, "' at [", e.begin, ", ", e.end, ") overlaps tensor '",
           prev->name, "' at [", prev->begin, ", ", prev->end, ")");
    if (e.begin > pos)
      fail(path, ": data buffer bytes [", pos, ", ", e.begin, ") belong to no tensor");
    pos = e.end;
    prev = &e;
  }
  if (pos != buffer_size)
    fail(path, ": data buffer bytes [", pos, ", ", buffer_size, ") belong to no tensor");
}

Tensor convert(const Entry& e, DType dtype, const std::uint8_t* src, const std::string& path) {
  Tensor t(e.shape, dtype);
  const auto n = static_cast<std::size_t>(e.numel);
  if (e.dtype == "F64") {
    float* out = t.data<float>();
    for (std::size_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, src + 8 * i, 8);
      out[i] = static_cast<float>(v);
    }
  } else if (e.dtype == "I64") {
    std::int32_t* out = t.data<std::int32_t>();
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t v;
      std::memcpy(&v, src + 8 * i, 8);
      if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
        fail(path, ": I64 tensor '", e.name, "' element ", i, " = ", v, " does not fit in i32");
      out[i] = static_cast<std::int32_t>(v);
    }
  } else if (n > 0) {
    std::memcpy(t.raw(), src, t.nbytes());
  }
  return t;
}

// Parses the header JSON, noting its top-level keys in order so duplicates can be caught
// (the DOM keeps only the last value of a repeated key).
json parse_header(const std::uint8_t* p, std::size_t n, const std::string& path,
                  std::vector<std::string>& keys) {
  std::set<std::string> seen;
  std::string duplicate;
  bool has_duplicate = false;
  const json::parser_callback_t note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && !has_duplicate) {
        has_duplicate = true;
        duplicate = k;
      }
      keys.push_back(k);
    }
    return true;
  };
  json h;
  try {
    h = json::parse(p, p + n, note_keys);
  } catch (const json::exception& ex) {
    fail(path, ": header is not valid JSON: ", ex.what());
  }
  if (!h.is_object()) fail(path, ": header is not a JSON object");
  if (has_duplicate) fail(path, ": header names '", duplicate, "' twice");
  return h;
}

std::vector<std::uint8_t> serialize(const SafetensorsFile& f, const std::string& path) {
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : f.metadata) {
    if (k.rfind(kDtypeKeyPrefix, 0) == 0)
      fail(path, ": metadata key '", k, "' uses the prefix reserved for fixed-point tensors");
    meta.emplace(k, v);
  }
  std::set<std::string> names;
  std::uint64_t buffer_size = 0;
  for (const auto& [name, t] : f.tensors) {
    if (name == kMetadataKey) fail(path, ": a tensor cannot be named ", kMetadataKey);
    if (!names.insert(name).second) fail(path, ": tensor '", name, "' appears twice");
    if (!t.defined()) fail(path, ": tensor '", name, "' has no storage");
    if (t.dtype().kind == DType::Kind::fixed) meta[kDtypeKeyPrefix + name] = t.dtype().name();
    buffer_size += t.nbytes();
  }

  std::string header = "{";
  try {
    if (!meta.empty()) header += std::string("\"") + kMetadataKey + "\":" + json(meta).dump();
    std::uint64_t offset = 0;
    for (const auto& [name, t] : f.tensors) {
      const json entry = {{"dtype", file_dtype_of(t.dtype())},
                          {"shape", t.shape()},
                          {"data_offsets", {offset, offset + t.nbytes()}}};
      if (header.size() > 1) header += ",";
      header += json(name).dump() + ":" + entry.dump();
      offset += t.nbytes();
    }
  } catch (const json::exception& ex) {
    fail(path, ": cannot encode the header (names must be valid UTF-8): ", ex.what());
  }
  header += "}";
  // Padding keeps the buffer 8-byte aligned in the file, as the reference writer does.
  header.resize((header.size() + 7) / 8 * 8, ' ');

  std::vector<std::uint8_t> out(8 + header.size() + buffer_size);
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  std::uint8_t* dst = out.data() + 8 + header.size();
  for (const auto& [name, t] : f.tensors) {
    if (t.nbytes()) std::memcpy(dst, t.raw(), t.nbytes());
    dst += t.nbytes();
  }
  return out;
}

}  // namespace

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

const Tensor& SafetensorsFile::at(const std::string& name, const std::string& path_for_errors) const {
  if (const Tensor* t = find(name)) return *t;
  std::string some;
  const std::size_t shown = std::min<std::size_t>(tensors.size(), 8);
  for (std::size_t i = 0; i < shown; ++i) some += (i ? ", " : "") + tensors[i].first;
  if (shown < tensors.size()) some += ", ... (" + std::to_string(tensors.size() - shown) + " more)";
  fail(path_for_errors, ": no tensor '", name, "' (the file has ", tensors.size(),
       tensors.empty() ? " tensors)" : " tensors: " + some + ")");
}

SafetensorsFile parse_safetensors(const std::uint8_t* data, std::size_t size,
                                  const std::string& path) {
  if (size < 8) fail(path, ": ", size, " bytes, too short for a safetensors file (8-byte header length)");
  const std::uint64_t header_size = read_u64_le(data);
  if (header_size > kMaxHeaderBytes)
    fail(path, ": header length ", header_size, " exceeds the ", kMaxHeaderBytes, "-byte limit");
  if (header_size > size - 8)
    fail(path, ": header length ", header_size, " exceeds the ", size - 8, " bytes after it");

  std::vector<std::string> keys;
  const json header = parse_header(data + 8, static_cast<std::size_t>(header_size), path, keys);

  SafetensorsFile f;
  if (const auto m = header.find(kMetadataKey); m != header.end() && !m->is_null()) {
    if (!m->is_object()) fail(path, ": ", kMetadataKey, " is not a JSON object");
    for (const auto& [k, v] : m->items()) {
      if (!v.is_string()) fail(path, ": metadata '", k, "' is not a string");
      f.metadata.emplace(k, v.get<std::string>());
    }
  }

  std::vector<Entry> entries;
  std::map<std::string, std::size_t> index_of;  // name -> header order
  for (const std::string& k : keys) {
    if (k == kMetadataKey) continue;
    index_of[k] = entries.size();
    entries.push_back(parse_entry(k, header.at(k), entries.size(), path));
  }

  // Fixed-point dtypes travel in reserved metadata keys; resolve and remove them.
  std::vector<DType> fixed_of(entries.size(), DType::f32());
  std::vector<bool> has_fixed(entries.size(), false);
  for (auto it = f.metadata.begin(); it != f.metadata.end();) {
    if (it->first.rfind(kDtypeKeyPrefix, 0) != 0) {
      ++it;
      continue;
    }
    const std::string name = it->first.substr(kDtypeKeyPrefix.size());
    const auto idx = index_of.find(name);
    if (idx == index_of.end() || entries[idx->second].dtype != "I8")
      fail(path, ": metadata '", it->first, "' names no I8 tensor");
    DType d;
    try {
      d = DType::parse(it->second);
    } catch (const Error&) {
      d = DType::f32();
    }
    if (d.kind != DType::Kind::fixed)
      fail(path, ": metadata '", it->first, "' = '", it->second, "' is not a fixed-point dtype (e.g. fixed2.5)");
    fixed_of[idx->second] = d;
    has_fixed[idx->second] = true;
    it = f.metadata.erase(it);
  }
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (entries[i].dtype == "I8" && !has_fixed[i])
      fail(path, ": I8 tensor '", entries[i].name, "' without ", kDtypeKeyPrefix, entries[i].name,
           " metadata giving its fixed-point format");

  const std::uint64_t buffer_size = size - 8 - header_size;
  check_layout(entries, buffer_size, path);

  const std::uint8_t* buffer = data + 8 + header_size;
  f.tensors.reserve(entries.size());
  for (const Entry& e : entries) {
    const DType d = e.dtype == "I8" ? fixed_of[e.header_index] : dtype_of_file(e.dtype);
    f.tensors.emplace_back(e.name, convert(e, d, buffer + e.begin, path));
  }
  return f;
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_file(path);
  return parse_safetensors(bytes.data(), bytes.size(), path);
}

std::vector<std::uint8_t> serialize_safetensors(const SafetensorsFile& f) {
  return serialize(f, "safetensors writer");
}

void write_safetensors(const std::string& path, const SafetensorsFile& f) {
  const std::vector<std::uint8_t> bytes = serialize(f, path);
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace safnet
