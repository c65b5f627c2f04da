// IDX reader (MNIST, Fashion-MNIST): gzip inflated in memory under a size cap, exact size checks.
#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "data/data_files.h"
#include "host/check.h"
#include "host/file_io.h"

namespace safnet {

namespace {
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// What the first `have` bytes of an IDX file tell about its size: the header length needed so
// far, and once the whole header is there, the total byte count it implies (else 0).
struct IdxSize {
  std::size_t header = 4;
  std::uint64_t total = 0;
};

IdxSize idx_size(const std::uint8_t* p, std::size_t have, const std::string& path) {
  IdxSize s;
  if (have < 4) return s;
  if (p[0] != 0 || p[1] != 0 || p[2] != 0x08 || p[3] == 0)
    fail(path, ": bad magic ", hex32(be32(p)), ", expected ", hex32(kIdxLabelsMagic), " (labels) or ",
         hex32(kIdxImagesMagic), " (images)");
  s.header = 4 + 4 * std::size_t{p[3]};
  if (have < s.header) return s;
  std::uint64_t total = 1;
  for (std::size_t i = 0; i < p[3]; ++i) {
    const std::uint64_t d = be32(p + 4 + 4 * i);
    if (d != 0 && total > kIdxMaxBytes / d) fail(path, ": header claims more than ", kIdxMaxBytes, " bytes");
    total *= d;
  }
  s.total = total + s.header;
  return s;
}

std::vector<std::uint8_t> read_idx_file(const std::string& path) {
  std::vector<std::uint8_t> bytes = read_file(path);
  if (is_gzip(bytes.data(), bytes.size())) return gunzip_idx(bytes.data(), bytes.size(), path);
  return bytes;
}

const std::vector<std::string>& class_names_for(const std::string& name) {
  static const std::vector<std::string> fashion{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  static const std::vector<std::string> digits{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  return name == "fashion-mnist" ? fashion : digits;
}
}  // namespace

bool is_gzip(const std::uint8_t* data, std::size_t size) { return size >= 2 && data[0] == 0x1f && data[1] == 0x8b; }

std::vector<std::uint8_t> gunzip_idx(const std::uint8_t* data, std::size_t size, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail(path, ": cannot initialise zlib");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&zs};

  constexpr std::size_t kChunk = std::size_t{1} << 30;  // zlib counts in 32-bit uInt
  const std::uint8_t* in = data;
  std::size_t in_left = size;
  std::vector<std::uint8_t> out;
  std::size_t produced = 0;
  std::uint64_t cap = 4;  // grows as the header is read; final once the header is complete
  bool cap_final = false;
  const auto update_cap = [&] {
    if (!cap_final) {
      const IdxSize s = idx_size(out.data(), produced, path);
      cap_final = s.total != 0;
      cap = cap_final ? s.total + 1 : s.header;
    }
    if (cap_final && produced >= cap)
      fail(path, ": inflates to more than the ", cap - 1, " bytes its IDX header implies");
  };
  for (;;) {
    update_cap();
    if (zs.avail_in == 0 && in_left > 0) {
      const std::size_t n = std::min(in_left, kChunk);
      zs.next_in = const_cast<Bytef*>(in);
      zs.avail_in = static_cast<uInt>(n);
      in += n;
      in_left -= n;
    }
    if (out.size() <= produced) {
      const std::uint64_t grow = std::max<std::uint64_t>(produced, 1 << 16);
      out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(cap, produced + grow)));
    }
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(std::min(out.size() - produced, kChunk));
    const int rc = inflate(&zs, Z_NO_FLUSH);
    produced = static_cast<std::size_t>(zs.next_out - out.data());
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0 && in_left == 0) break;
      // Concatenated gzip members form one file, as gzread reads them.
      const std::uint8_t* rest = zs.next_in;
      const std::size_t rest_n = zs.avail_in + in_left;
      if (!is_gzip(rest, std::min<std::size_t>(rest_n, 2)))
        fail(path, ": ", rest_n, " trailing bytes after the gzip stream");
      if (inflateReset(&zs) != Z_OK) fail(path, ": cannot reset zlib");
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0)
      fail(path, ": truncated gzip stream after ", produced, " bytes");
    if (rc != Z_OK && rc != Z_BUF_ERROR) fail(path, ": corrupt gzip data: ", zs.msg ? zs.msg : "zlib error");
  }
  update_cap();
  out.resize(produced);
  return out;
}

IdxImages parse_idx_images(const std::uint8_t* data, std::size_t size, const std::string& path) {
  if (size >= 4 && be32(data) != kIdxImagesMagic)
    fail(path, ": bad magic ", hex32(be32(data)), ", expected ", hex32(kIdxImagesMagic), " (IDX images)");
  if (size < 16) fail(path, ": ", size, " bytes, shorter than an IDX image header (16 bytes)");
  const std::uint64_t n = be32(data + 4), rows = be32(data + 8), cols = be32(data + 12);
  if (n == 0 || rows == 0 || cols == 0) fail(path, ": empty images: ", n, " images of ", rows, "x", cols);
  if (rows > 65535 || cols > 65535) fail(path, ": implausible image size ", rows, "x", cols);
  const unsigned __int128 expected = static_cast<unsigned __int128>(n) * rows * cols + 16;
  if (expected != size)
    fail(path, ": ", size, " bytes but the header (", n, " images of ", rows, "x", cols, ") implies ",
         static_cast<std::uint64_t>(expected), expected > size ? " (truncated)" : " (oversized)");
  IdxImages im;
  im.count = static_cast<std::int64_t>(n);
  im.rows = static_cast<int>(rows);
  im.cols = static_cast<int>(cols);
  im.pixels.assign(data + 16, data + size);
  return im;
}

std::vector<std::int32_t> parse_idx_labels(const std::uint8_t* data, std::size_t size, const std::string& path,
                                           int classes) {
  if (size >= 4 && be32(data) != kIdxLabelsMagic)
    fail(path, ": bad magic ", hex32(be32(data)), ", expected ", hex32(kIdxLabelsMagic), " (IDX labels)");
  if (size < 8) fail(path, ": ", size, " bytes, shorter than an IDX label header (8 bytes)");
  const std::uint64_t n = be32(data + 4);
  if (n == 0) fail(path, ": holds no labels");
  if (n + 8 != size)
    fail(path, ": ", size, " bytes but the header (", n, " labels) implies ", n + 8,
         n + 8 > size ? " (truncated)" : " (oversized)");
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const int v = data[8 + i];
    if (v >= classes) fail(path, ": label ", i, " is ", v, ", expected < ", classes);
    labels[i] = v;
  }
  return labels;
}

Dataset load_idx(const std::string& name, const std::string& dir, Split split, std::int64_t limit) {
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string images_name = prefix + "-images-idx3-ubyte", labels_name = prefix + "-labels-idx1-ubyte";
  const std::vector<std::string> paths =
      find_data_files(dir, "", {{images_name, images_name + ".gz"}, {labels_name, labels_name + ".gz"}},
                      name + (split == Split::train ? " train" : " test") + " data");

  Dataset d;
  d.name = name;
  d.classes = 10;
  d.class_names = class_names_for(name);
  {
    const std::vector<std::uint8_t> bytes = read_idx_file(paths[0]);
    IdxImages im = parse_idx_images(bytes.data(), bytes.size(), paths[0]);
    d.channels = 1;
    d.height = im.rows;
    d.width = im.cols;
    d.images = std::move(im.pixels);
  }
  const std::vector<std::uint8_t> bytes = read_idx_file(paths[1]);
  d.labels = parse_idx_labels(bytes.data(), bytes.size(), paths[1], d.classes);
  const std::int64_t n_images = static_cast<std::int64_t>(d.images.size()) / d.image_bytes();
  if (n_images != d.size())
    fail(paths[0], ": holds ", n_images, " images but ", paths[1], " holds ", d.size(), " labels");
  truncate_dataset(d, limit);
  return d;
}

}  // namespace safnet
