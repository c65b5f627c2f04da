// JPEG/PNG decoding: every colour type to RGB, PIL's CMYK convention, and corrupt, truncated or huge input.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>

#include "data/image_decode.h"
#include "data/rng.h"
#include "host/check.h"
#include "host/file_io.h"
#include "tests/data/image_test_util.h"
#include "tests/skip.h"

namespace safnet {
namespace {

using test::encode_jpeg;
using test::encode_png;
using test::JpegSpec;
using test::PngSpec;

Image decode(const std::vector<std::uint8_t>& b) { return decode_image_bytes(b.data(), b.size(), "mem.img"); }

// The error message of decoding `b`, or "" when it decodes.
std::string decode_error(const std::vector<std::uint8_t>& b, const std::string& name = "mem.img") {
  try {
    decode_image_bytes(b.data(), b.size(), name);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

std::vector<std::uint16_t> wide(const std::vector<std::uint8_t>& v) { return {v.begin(), v.end()}; }

void expect_rgb(const Image& im, int h, int w, const std::vector<std::uint8_t>& want, int tol, const char* what) {
  ASSERT_EQ(im.height, h) << what;
  ASSERT_EQ(im.width, w) << what;
  ASSERT_EQ(im.pixels.size(), want.size()) << what;
  for (std::size_t k = 0; k < want.size(); ++k)
    ASSERT_NEAR(im.pixels[k], want[k], tol) << what << ": byte " << k << " (pixel " << k / 3 << ")";
}

TEST(ImageDecode, PngColourTypesBecomeRgb) {
  const int h = 5, w = 7;
  const std::vector<std::uint8_t> rgb = test::block_image(h, w, 1), rgba = test::block_image(h, w, 2, 4),
                                   grey = test::block_image(h, w, 3, 1), ga = test::block_image(h, w, 4, 2);
  PngSpec s;
  s.height = h;
  s.width = w;
  expect_rgb(decode(encode_png(wide(rgb), s)), h, w, rgb, 0, "RGB");
  s.interlace = true;
  expect_rgb(decode(encode_png(wide(rgb), s)), h, w, rgb, 0, "interlaced RGB");
  s.interlace = false;

  std::vector<std::uint8_t> want;
  s.color_type = PNG_COLOR_TYPE_RGB_ALPHA;  // alpha dropped, not composited
  for (std::size_t p = 0; p < rgba.size() / 4; ++p) want.insert(want.end(), &rgba[4 * p], &rgba[4 * p + 3]);
  expect_rgb(decode(encode_png(wide(rgba), s)), h, w, want, 0, "RGBA");

  want.clear();
  s.color_type = PNG_COLOR_TYPE_GRAY;
  for (auto v : grey) want.insert(want.end(), 3, v);
  expect_rgb(decode(encode_png(wide(grey), s)), h, w, want, 0, "grey");

  want.clear();
  s.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  for (std::size_t p = 0; p < ga.size() / 2; ++p) want.insert(want.end(), 3, ga[2 * p]);
  expect_rgb(decode(encode_png(wide(ga), s)), h, w, want, 0, "grey+alpha");
}

TEST(ImageDecode, PngLowAndHighBitDepths) {
  const int h = 3, w = 9;
  PngSpec s;
  s.height = h;
  s.width = w;
  s.color_type = PNG_COLOR_TYPE_GRAY;
  // Grey below 8 bits scales to the full range: v * 255 / (2^depth - 1).
  for (int depth : {1, 2, 4}) {
    s.depth = depth;
    std::vector<std::uint16_t> px;
    std::vector<std::uint8_t> want;
    for (int k = 0; k < h * w; ++k) {
      const int v = (k * 5 + 1) % (1 << depth);
      px.push_back(static_cast<std::uint16_t>(v));
      want.insert(want.end(), 3, static_cast<std::uint8_t>(v * 255 / ((1 << depth) - 1)));
    }
    expect_rgb(decode(encode_png(px, s)), h, w, want, 0, ("grey depth " + std::to_string(depth)).c_str());
  }
  // 16-bit samples keep their high byte (as PIL reads 16-bit RGB).
  for (int type : {PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_GRAY}) {
    s.color_type = type;
    s.depth = 16;
    const int ch = type == PNG_COLOR_TYPE_RGB ? 3 : 1;
    std::vector<std::uint16_t> px;
    std::vector<std::uint8_t> want;
    for (int k = 0; k < h * w * ch; ++k) {
      const auto v = static_cast<std::uint16_t>((k * 40503u + 7) & 0xFFFF);
      px.push_back(v);
      want.insert(want.end(), 3 / ch, static_cast<std::uint8_t>(v >> 8));
    }
    expect_rgb(decode(encode_png(px, s)), h, w, want, 0, ch == 3 ? "RGB 16-bit" : "grey 16-bit");
  }
}

TEST(ImageDecode, PngPaletteLooksUpColoursAndIgnoresTransparency) {
  PngSpec s;
  s.height = 4;
  s.width = 6;
  s.color_type = PNG_COLOR_TYPE_PALETTE;
  s.palette = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}, {255, 255, 255}};
  s.trns = {0, 128};
  for (int depth : {2, 8}) {
    s.depth = depth;
    std::vector<std::uint16_t> idx;
    std::vector<std::uint8_t> want;
    for (int k = 0; k < s.height * s.width; ++k) {
      const int i = (k * 3 + k / 5) % 4;
      idx.push_back(static_cast<std::uint16_t>(i));
      want.insert(want.end(), {s.palette[i].red, s.palette[i].green, s.palette[i].blue});
    }
    expect_rgb(decode(encode_png(idx, s)), s.height, s.width, want, 0, "palette");
  }
}

TEST(ImageDecode, JpegRgbAndGrey) {
  const int h = 16, w = 24;
  const std::vector<std::uint8_t> rgb = test::block_image(h, w, 5);
  // Flat 8x8 blocks at quality 100 keep their DC exactly; only the YCbCr round trip rounds:
  // 0.5 (Y) + 1.772 * 0.5 (Cb, the largest coefficient) + 0.5 (output) < 2, so at most 1.
  JpegSpec s;
  s.height = h;
  s.width = w;
  const Image baseline = decode(encode_jpeg(rgb, s));
  expect_rgb(baseline, h, w, rgb, 1, "RGB JPEG");
  s.progressive = true;
  const Image progressive = decode(encode_jpeg(rgb, s));
  EXPECT_EQ(progressive.pixels, baseline.pixels) << "progressive and baseline code the same coefficients";
  s.progressive = false;
  s.file_space = JCS_RGB;  // Adobe RGB, no colour transform: exact
  expect_rgb(decode(encode_jpeg(rgb, s)), h, w, rgb, 0, "RGB-coded JPEG");

  const std::vector<std::uint8_t> grey = test::block_image(h, w, 6, 1);
  std::vector<std::uint8_t> want;
  for (auto v : grey) want.insert(want.end(), 3, v);
  JpegSpec g;
  g.height = h;
  g.width = w;
  g.channels = 1;
  g.in_space = JCS_GRAYSCALE;
  g.file_space = JCS_GRAYSCALE;
  expect_rgb(decode(encode_jpeg(grey, g)), h, w, want, 0, "grey JPEG");
}

// PIL's value for CMYK (10, 200, 100, 50), i.e. stored Adobe-inverted as (245, 55, 155, 205):
// Image.new("CMYK", (1, 1), (10, 200, 100, 50)).convert("RGB") == (197, 44, 125).
TEST(ImageDecode, CmykJpegConvertsLikePil) {
  JpegSpec s;
  s.channels = 4;
  s.in_space = JCS_CMYK;
  s.file_space = JCS_CMYK;
  std::vector<std::uint8_t> px;
  for (int k = 0; k < 64; ++k) px.insert(px.end(), {245, 55, 155, 205});
  const Image im = decode(encode_jpeg(px, s));
  ASSERT_EQ(im.pixels.size(), 64u * 3);
  for (int k = 0; k < 64; ++k) {
    EXPECT_EQ(im.pixels[3 * k], 197);
    EXPECT_EQ(im.pixels[3 * k + 1], 44);
    EXPECT_EQ(im.pixels[3 * k + 2], 125);
  }
}

TEST(ImageDecode, CmykAndYcckJpegs) {
  const int h = 16, w = 16;
  const std::vector<std::uint8_t> cmyk = test::block_image(h, w, 7, 4);
  // PIL: with stored (inverted) c and k, R = k - round(k * (255 - c) / 255) its way.
  std::vector<std::uint8_t> want;
  for (std::size_t p = 0; p < cmyk.size() / 4; ++p)
    for (int ch = 0; ch < 3; ++ch) {
      const int k = cmyk[4 * p + 3], t = (255 - cmyk[4 * p + ch]) * k + 128;
      want.push_back(static_cast<std::uint8_t>(k - (((t >> 8) + t) >> 8)));
    }
  JpegSpec s;
  s.height = h;
  s.width = w;
  s.channels = 4;
  s.in_space = JCS_CMYK;
  s.file_space = JCS_CMYK;
  expect_rgb(decode(encode_jpeg(cmyk, s)), h, w, want, 0, "CMYK JPEG");
  // YCCK stores C, M, Y through YCbCr (each off by at most 1 after the round trip, as above)
  // and K exactly; R changes by at most k/255 <= 1 per unit of c, plus the rounding of the
  // conversion itself, so by at most 2.
  s.file_space = JCS_YCCK;
  expect_rgb(decode(encode_jpeg(cmyk, s)), h, w, want, 2, "YCCK JPEG");
}

TEST(ImageDecode, NotAnImage) {
  EXPECT_NE(decode_error({}, "a/empty.jpg").find("a/empty.jpg: empty file"), std::string::npos);
  const std::vector<std::uint8_t> text{'h', 'e', 'l', 'l', 'o'};
  EXPECT_EQ(decode_error(text, "x/hello.png"), "x/hello.png: not a JPEG or PNG image");
  // The content decides, not the name: a PNG called .jpg decodes.
  EXPECT_EQ(decode_error(test::rgb_png(3, 3, 1), "photo.jpg"), "");
}

TEST(ImageDecode, TruncatedAndCorruptData) {
  const std::vector<std::uint8_t> jpeg = test::rgb_jpeg(32, 40, 1), png = test::rgb_png(32, 40, 1);
  ASSERT_EQ(decode_error(jpeg), "");
  ASSERT_EQ(decode_error(png), "");
  // Cut in the middle of the entropy-coded data or the IDAT stream.
  const auto half = [](std::vector<std::uint8_t> b) {
    b.resize(b.size() / 2);
    return b;
  };
  EXPECT_NE(decode_error(half(jpeg), "t.jpg").find("t.jpg: corrupt JPEG data ("), std::string::npos);
  EXPECT_NE(decode_error(half(png), "t.png").find("t.png: corrupt PNG data ("), std::string::npos);
  // Header only.
  EXPECT_NE(decode_error({0xFF, 0xD8, 0xFF}).find("corrupt JPEG data"), std::string::npos);
  EXPECT_NE(decode_error({png.begin(), png.begin() + 8}).find("corrupt PNG data"), std::string::npos);
  // A flipped bit in IHDR breaks its CRC, a critical-chunk error.
  std::vector<std::uint8_t> bad_crc = png;
  bad_crc[18] ^= 0x01;
  EXPECT_NE(decode_error(bad_crc).find("corrupt PNG data"), std::string::npos);
  // Every prefix of both files either decodes fully or fails with an Error, never worse.
  for (const auto* file : {&jpeg, &png})
    for (std::size_t n = 0; n < file->size(); ++n) {
      const std::vector<std::uint8_t> cut(file->begin(), file->begin() + static_cast<std::ptrdiff_t>(n));
      try {
        const Image im = decode(cut);
        EXPECT_EQ(im.pixels.size(), 32u * 40 * 3);
      } catch (const Error&) {
      }
    }
}

TEST(ImageDecode, RandomCorruptionNeverCrashes) {
  const std::vector<std::vector<std::uint8_t>> seeds{test::rgb_jpeg(24, 16, 2), test::rgb_png(13, 11, 2)};
  Rng r(7);
  int failures = 0, runs = 0;
  for (const auto& seed : seeds)
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<std::uint8_t> b = seed;
      const int flips = 1 + static_cast<int>(rng_below(r, 8));
      // Leave the magic bytes so that the decoders, not the sniffing, see the damage.
      for (int f = 0; f < flips; ++f) b[8 + rng_below(r, b.size() - 8)] ^= static_cast<std::uint8_t>(1 + rng_below(r, 255));
      ++runs;
      try {
        const Image im = decode(b);
        EXPECT_EQ(im.pixels.size(), static_cast<std::size_t>(im.height) * im.width * 3);
      } catch (const Error& e) {
        ++failures;
        EXPECT_NE(std::string(e.what()).find("mem.img: "), std::string::npos) << e.what();
      }
    }
  // Most damage is caught (CRCs, Huffman codes); a run where nothing failed would mean the
  // corruption never reached the decoders.
  EXPECT_GT(failures, 0) << runs << " runs";
}

// PNG bytes with an IHDR of w x h (a valid CRC) and no image data.
std::vector<std::uint8_t> png_header(std::uint32_t w, std::uint32_t h) {
  std::vector<std::uint8_t> b = test::rgb_png(1, 1, 0);
  for (int i = 0; i < 4; ++i) {
    b[16 + i] = static_cast<std::uint8_t>(w >> (24 - 8 * i));
    b[20 + i] = static_cast<std::uint8_t>(h >> (24 - 8 * i));
  }
  const auto crc = static_cast<std::uint32_t>(crc32(0, b.data() + 12, 17));  // chunk type and data
  for (int i = 0; i < 4; ++i) b[29 + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
  return b;
}

TEST(ImageDecode, RefusesDecompressionBombs) {
  // 2^28 pixels is the limit: 16384 x 16385 is just over, and refused before allocation.
  const std::string png_msg = decode_error(png_header(16384, 16385), "bomb.png");
  EXPECT_NE(png_msg.find("bomb.png: PNG image of 16384 x 16385 pixels exceeds the limit"), std::string::npos)
      << png_msg;
  // A JPEG whose frame header claims 60000 x 60000.
  std::vector<std::uint8_t> jpeg = test::rgb_jpeg(8, 8, 0);
  std::size_t sof = 2;
  while (sof + 9 < jpeg.size() && !(jpeg[sof] == 0xFF && (jpeg[sof + 1] == 0xC0 || jpeg[sof + 1] == 0xC2))) ++sof;
  ASSERT_LT(sof + 9, jpeg.size());
  jpeg[sof + 5] = jpeg[sof + 7] = 0xEA;  // 60000 = 0xEA60
  jpeg[sof + 6] = jpeg[sof + 8] = 0x60;
  const std::string jpeg_msg = decode_error(jpeg, "bomb.jpg");
  EXPECT_NE(jpeg_msg.find("bomb.jpg: JPEG image of 60000 x 60000 pixels exceeds the limit"), std::string::npos)
      << jpeg_msg;
}

TEST(ImageDecode, FileErrorsNameThePath) {
  const auto dir = test::fresh_dir("files");
  const auto good = dir / "ok.png", bad = dir / "bad.jpg";
  test::write_bytes(good, test::rgb_png(2, 3, 1));
  test::write_bytes(bad, {0xFF, 0xD8, 0xFF, 0xE0, 0x00});
  const Image im = decode_image(good.string());
  EXPECT_EQ(im.height, 2);
  EXPECT_EQ(im.width, 3);
  for (const auto& p : {bad, dir / "missing.png"}) {
    try {
      decode_image(p.string());
      ADD_FAILURE() << p << " decoded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  }
}

// Replays tests/fuzz/corpus/image (seeds and any input that once crashed the fuzzer).
TEST(ImageDecode, FuzzCorpus) {
  std::vector<std::string> files;
#ifdef SAFNET_SOURCE_DIR
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(std::string(SAFNET_SOURCE_DIR) + "/tests/fuzz/corpus/image", ec))
    if (e.is_regular_file()) files.push_back(e.path().string());
#endif
  if (files.empty()) SAFNET_SKIP_OR_FAIL("no corpus (SAFNET_SOURCE_DIR unset or tests/fuzz/corpus/image empty)");
  int ok = 0;
  for (const auto& path : files) {
    const std::vector<std::uint8_t> b = read_file(path);
    try {
      decode_image_bytes(b.data(), b.size(), path);
      ++ok;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(ok, 0) << "no seed decodes: the seeds no longer reach the pixel loops";
}

}  // namespace
}  // namespace safnet
