// JPEG (libjpeg-turbo) and PNG (libpng) decoding: errors leave the C libraries by longjmp.
#include "data/image_decode.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "host/check.h"
#include "host/file_io.h"

namespace safnet {

namespace {

// The frames that call setjmp hold no object with a destructor, so a longjmp skips none.

// Real progressive JPEGs have about ten scans; thousands make decoding quadratic.
constexpr int kMaxJpegScans = 500;
// Progressive JPEGs buffer every coefficient of the image (about 3 bytes per pixel at 4:2:0).
constexpr long kJpegMemoryLimit = 1L << 30;
// Smaller outputs are reserved at once; larger ones grow with the rows actually decoded, so a
// short file that claims a huge image costs memory in proportion to its data.
constexpr std::size_t kReserveBytes = std::size_t{1} << 24;

std::string pixel_limit_message(std::uint64_t w, std::uint64_t h) {
  return detail::concat(w, " x ", h, " pixels exceeds the limit of ", kMaxImagePixels, " pixels");
}

struct JpegError {
  jpeg_error_mgr mgr;  // first, so libjpeg's pointer to it is a pointer to this
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

struct JpegState {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  jpeg_progress_mgr progress{};
  bool created = false;
  std::uint64_t too_big_w = 0, too_big_h = 0;
  std::vector<std::uint8_t> row;  // (W, components) one decoded scanline
  Image img;
  ~JpegState() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

void jpeg_error_exit(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// libjpeg pads a truncated file with grey and only warns: that is an error here, as in PIL.
// Other warnings (extraneous bytes before a marker, which some ImageNet files have) are not.
void jpeg_emit_message(j_common_ptr c, int level) {
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) jpeg_error_exit(c);
}

void jpeg_check_scans(j_common_ptr c) {
  if (!c->is_decompressor) return;
  const int scans = reinterpret_cast<j_decompress_ptr>(c)->input_scan_number;
  if (scans > kMaxJpegScans) {
    auto* e = reinterpret_cast<JpegError*>(c->err);
    std::snprintf(e->message, sizeof e->message, "more than %d scans", kMaxJpegScans);
    std::longjmp(e->jump, 1);
  }
}

// PIL reads every 4-component JPEG as Adobe's inverted CMYK and converts with
// R = (255 - K) - (255 - K) * C / 255 rounded its way; in stored (inverted) values that is
// nk - nk * (255 - c) / 255 with nk the stored K.
void cmyk_row_to_rgb(const std::uint8_t* in, std::uint8_t* out, int width) {
  for (int x = 0; x < width; ++x) {
    const int nk = in[4 * x + 3];
    for (int ch = 0; ch < 3; ++ch) {
      const int t = (255 - in[4 * x + ch]) * nk + 128;
      out[3 * x + ch] = static_cast<std::uint8_t>(nk - (((t >> 8) + t) >> 8));
    }
  }
}

bool jpeg_run(JpegState& s, const std::uint8_t* data, std::size_t size) {
  j_decompress_ptr c = &s.cinfo;
  c->err = jpeg_std_error(&s.err.mgr);
  s.err.mgr.error_exit = jpeg_error_exit;
  s.err.mgr.emit_message = jpeg_emit_message;
  if (setjmp(s.err.jump)) return false;
  jpeg_create_decompress(c);
  s.created = true;
  c->mem->max_memory_to_use = kJpegMemoryLimit;
  s.progress.progress_monitor = jpeg_check_scans;
  c->progress = &s.progress;
  jpeg_mem_src(c, data, static_cast<unsigned long>(size));
  jpeg_read_header(c, TRUE);
  if (std::uint64_t{c->image_width} * c->image_height > static_cast<std::uint64_t>(kMaxImagePixels)) {
    s.too_big_w = c->image_width;
    s.too_big_h = c->image_height;
    return false;
  }
  const bool cmyk = c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK;
  c->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(c);
  const int w = static_cast<int>(c->output_width), h = static_cast<int>(c->output_height);
  if (c->output_components != (cmyk ? 4 : 3)) ERREXIT(c, JERR_BAD_J_COLORSPACE);
  const std::size_t row_bytes = static_cast<std::size_t>(w) * 3;
  s.img.height = h;
  s.img.width = w;
  if (row_bytes * h <= kReserveBytes) s.img.pixels.reserve(row_bytes * h);
  s.row.resize(static_cast<std::size_t>(w) * c->output_components);
  while (c->output_scanline < c->output_height) {
    const std::size_t y = c->output_scanline;
    JSAMPROW r = cmyk ? s.row.data() : nullptr;
    s.img.pixels.resize(row_bytes * (y + 1));
    if (!cmyk) r = s.img.pixels.data() + row_bytes * y;
    if (jpeg_read_scanlines(c, &r, 1) != 1) ERREXIT(c, JERR_INPUT_EMPTY);
    if (cmyk) cmyk_row_to_rgb(s.row.data(), s.img.pixels.data() + row_bytes * y, w);
  }
  // No jpeg_finish_decompress: trailing bytes or a missing end marker after complete image
  // data do not make the image unreadable.
  return true;
}

Image decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name) {
  JpegState s;
  if (!jpeg_run(s, data, size)) {
    if (s.too_big_w) fail(name, ": JPEG image of ", pixel_limit_message(s.too_big_w, s.too_big_h));
    fail(name, ": corrupt JPEG data (", s.err.message, ")");
  }
  return std::move(s.img);
}

struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0, pos = 0;
  char message[256] = {};
  std::uint64_t too_big_w = 0, too_big_h = 0;
  std::vector<png_bytep> rows;  // (H) for interlaced images, decoded whole
  Image img;
  ~PngState() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

void png_on_error(png_structp p, png_const_charp msg) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(p));
  std::snprintf(s->message, sizeof s->message, "%s", msg ? msg : "libpng error");
  png_longjmp(p, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_read_bytes(png_structp p, png_bytep out, png_size_t n) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(p));
  if (n > s->size - s->pos) png_error(p, "unexpected end of file");
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

bool png_run(PngState& s) {
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_on_error, png_on_warning);
  if (s.png) s.info = png_create_info_struct(s.png);
  if (!s.png || !s.info) {
    std::snprintf(s.message, sizeof s.message, "cannot allocate the decoder");
    return false;
  }
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_set_read_fn(s.png, &s, png_read_bytes);
  png_read_info(s.png, s.info);
  png_uint_32 w = 0, h = 0;
  int depth = 0, color = 0, interlace = 0;
  png_get_IHDR(s.png, s.info, &w, &h, &depth, &color, &interlace, nullptr, nullptr);
  if (std::uint64_t{w} * h > static_cast<std::uint64_t>(kMaxImagePixels)) {
    s.too_big_w = w;
    s.too_big_h = h;
    return false;
  }
  // PIL's convert("RGB"): palette entries looked up, transparency and alpha dropped (no
  // compositing), gamma ignored, 16-bit samples cut to their high byte.
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s.png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(s.png);
  if (depth == 16) png_set_strip_16(s.png);
  if ((color & PNG_COLOR_MASK_ALPHA) || color == PNG_COLOR_TYPE_PALETTE) png_set_strip_alpha(s.png);
  if (!(color & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(s.png);
  const int passes = png_set_interlace_handling(s.png);
  png_read_update_info(s.png, s.info);
  const std::size_t row_bytes = static_cast<std::size_t>(w) * 3;
  if (png_get_rowbytes(s.png, s.info) != row_bytes || png_get_channels(s.png, s.info) != 3)
    png_error(s.png, "unexpected pixel layout after conversion to RGB");
  s.img.height = static_cast<int>(h);
  s.img.width = static_cast<int>(w);
  if (passes > 1) {
    s.img.pixels.resize(row_bytes * h);
    s.rows.resize(h);
    for (png_uint_32 y = 0; y < h; ++y) s.rows[y] = s.img.pixels.data() + row_bytes * y;
    png_read_image(s.png, s.rows.data());
    return true;
  }
  if (row_bytes * h <= kReserveBytes) s.img.pixels.reserve(row_bytes * h);
  for (png_uint_32 y = 0; y < h; ++y) {
    s.img.pixels.resize(row_bytes * (y + 1));
    png_read_row(s.png, s.img.pixels.data() + row_bytes * y, nullptr);
  }
  // The chunks after the image data are not read: they cannot change the pixels.
  return true;
}

Image decode_png(const std::uint8_t* data, std::size_t size, const std::string& name) {
  PngState s;
  s.data = data;
  s.size = size;
  if (!png_run(s)) {
    if (s.too_big_w) fail(name, ": PNG image of ", pixel_limit_message(s.too_big_w, s.too_big_h));
    fail(name, ": corrupt PNG data (", s.message, ")");
  }
  return std::move(s.img);
}

bool is_jpeg(const std::uint8_t* p, std::size_t n) { return n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF; }

bool is_png(const std::uint8_t* p, std::size_t n) {
  static const std::uint8_t kMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return n >= 8 && std::memcmp(p, kMagic, 8) == 0;
}

}  // namespace

Image decode_image_bytes(const std::uint8_t* data, std::size_t size, const std::string& name) {
  if (size == 0) fail(name, ": empty file, not a JPEG or PNG image");
  if (is_jpeg(data, size)) return decode_jpeg(data, size, name);
  if (is_png(data, size)) return decode_png(data, size, name);
  fail(name, ": not a JPEG or PNG image");
}

Image decode_image(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_file(path);
  return decode_image_bytes(bytes.data(), bytes.size(), path);
}

}  // namespace safnet
