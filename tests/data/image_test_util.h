// Test helpers: encode small JPEG and PNG images with libjpeg and libpng, and write files into temp trees.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>

#include "tests/test_dir.h"

namespace safnet::test {

// Samples (H, W, channels); `channels` and `space` must agree (1 grey, 3 RGB, 4 CMYK).
struct JpegSpec {
  int height = 8, width = 8, channels = 3;
  J_COLOR_SPACE in_space = JCS_RGB;
  J_COLOR_SPACE file_space = JCS_YCbCr;  // JCS_GRAYSCALE, JCS_YCbCr, JCS_RGB, JCS_CMYK or JCS_YCCK
  int quality = 100;
  bool progressive = false;
  bool full_chroma = true;  // every component sampled 1x1, so flat 8x8 blocks survive exactly
};

inline std::vector<std::uint8_t> encode_jpeg(const std::vector<std::uint8_t>& samples, const JpegSpec& s) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);  // the inputs are ours, so libjpeg's exit on error is acceptable
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = static_cast<JDIMENSION>(s.width);
  c.image_height = static_cast<JDIMENSION>(s.height);
  c.input_components = s.channels;
  c.in_color_space = s.in_space;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, s.file_space);
  jpeg_set_quality(&c, s.quality, TRUE);
  if (s.full_chroma)
    for (int i = 0; i < c.num_components; ++i) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  if (s.progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(samples.data() + static_cast<std::size_t>(c.next_scanline) * s.width * s.channels);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<std::uint8_t> out(buf, buf + size);
  std::free(buf);
  return out;
}

// Samples (H, W, channels of the color type) at `depth` bits (palette: indices).
struct PngSpec {
  int height = 4, width = 4;
  int color_type = PNG_COLOR_TYPE_RGB;
  int depth = 8;
  bool interlace = false;
  std::vector<png_color> palette;   // palette images
  std::vector<png_byte> trns;       // palette alpha, optional
};

inline int png_channels(int color_type) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;  // palette
  }
}

inline void png_append(png_structp p, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(png_get_io_ptr(p));
  out->insert(out->end(), data, data + n);
}

inline std::vector<std::uint8_t> encode_png(const std::vector<std::uint16_t>& samples, const PngSpec& s) {
  std::vector<std::uint8_t> out;
  png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(p);  // no jump buffer: libpng aborts on our own bad input
  png_set_write_fn(p, &out, png_append, nullptr);
  png_set_IHDR(p, info, static_cast<png_uint_32>(s.width), static_cast<png_uint_32>(s.height), s.depth, s.color_type,
               s.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) png_set_PLTE(p, info, s.palette.data(), static_cast<int>(s.palette.size()));
  if (!s.trns.empty()) png_set_tRNS(p, info, s.trns.data(), static_cast<int>(s.trns.size()), nullptr);
  png_write_info(p, info);
  if (s.depth < 8) png_set_packing(p);
  const int ch = png_channels(s.color_type);
  const std::size_t row_samples = static_cast<std::size_t>(s.width) * ch;
  std::vector<std::vector<png_byte>> rows(static_cast<std::size_t>(s.height));
  std::vector<png_bytep> ptrs;
  for (int y = 0; y < s.height; ++y) {
    auto& r = rows[static_cast<std::size_t>(y)];
    for (std::size_t k = 0; k < row_samples; ++k) {
      const std::uint16_t v = samples[static_cast<std::size_t>(y) * row_samples + k];
      if (s.depth == 16) {
        r.push_back(static_cast<png_byte>(v >> 8));
        r.push_back(static_cast<png_byte>(v & 0xFF));
      } else {
        r.push_back(static_cast<png_byte>(v));
      }
    }
    ptrs.push_back(r.data());
  }
  png_write_image(p, ptrs.data());
  png_write_end(p, nullptr);
  png_destroy_write_struct(&p, &info);
  return out;
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << "cannot write " << path;
}

// (H, W, 3) RGB made of flat 8x8 blocks, each a colour from `seed`; flat blocks survive a
// quality-100 JPEG with no chroma subsampling up to colour-conversion rounding.
inline std::vector<std::uint8_t> block_image(int height, int width, int seed, int channels = 3) {
  std::vector<std::uint8_t> px(static_cast<std::size_t>(height) * width * channels);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) {
        const unsigned b = static_cast<unsigned>((y / 8) * 131 + (x / 8) * 71 + c * 29 + seed * 97);
        px[(static_cast<std::size_t>(y) * width + x) * channels + c] = static_cast<std::uint8_t>((b * 2654435761u) >> 24);
      }
  return px;
}

inline std::vector<std::uint8_t> rgb_jpeg(int height, int width, int seed) {
  JpegSpec s;
  s.height = height;
  s.width = width;
  return encode_jpeg(block_image(height, width, seed), s);
}

inline std::vector<std::uint8_t> rgb_png(int height, int width, int seed) {
  const std::vector<std::uint8_t> px = block_image(height, width, seed);
  PngSpec s;
  s.height = height;
  s.width = width;
  return encode_png(std::vector<std::uint16_t>(px.begin(), px.end()), s);
}

}  // namespace safnet::test
