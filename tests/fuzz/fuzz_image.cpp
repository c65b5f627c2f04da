// libFuzzer target: JPEG and PNG decoding of arbitrary bytes, then the eval transform of what decodes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/image_decode.h"
#include "data/image_transforms.h"
#include "host/check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace safnet;
  try {
    const Image img = decode_image_bytes(data, size, "fuzz");
    // Small crops keep each run fast; the geometry code is the same at any size.
    std::vector<std::uint8_t> out(3 * 8 * 8);
    eval_transform(img, 9, 8, out.data());
  } catch (const Error&) {
  }
  return 0;
}
