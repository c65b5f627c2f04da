// JPEG and PNG decoding to 8-bit RGB with libjpeg-turbo and libpng, safe on any input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace safnet {

// Larger images are refused before their pixels are allocated (decompression bombs).
constexpr std::int64_t kMaxImagePixels = std::int64_t{1} << 28;

struct Image {
  int height = 0, width = 0;
  std::vector<std::uint8_t> pixels;  // (H, W, 3) RGB
};

// JPEG or PNG, told apart by their magic bytes, never by the file name. Grey, grey+alpha, RGB,
// RGBA, palette and 16-bit PNGs and grey, RGB, CMYK and YCCK JPEGs all come out as RGB, the
// way PIL's convert("RGB") gives them (alpha dropped, 16-bit samples cut to their high byte,
// CMYK read with Adobe's inverted convention). Corrupt or truncated data throws safnet::Error
// naming the file and the problem.
Image decode_image(const std::string& path);
// `name` only names the data in errors.
Image decode_image_bytes(const std::uint8_t* data, std::size_t size, const std::string& name);

}  // namespace safnet
