// Image-folder data sets: listing order, classes, flat validation folders, errors, and the eval view of each image.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "data/dataset.h"
#include "data/image_decode.h"
#include "data/image_folder.h"
#include "data/image_transforms.h"
#include "host/check.h"
#include "tests/data/image_test_util.h"

namespace safnet {
namespace {

namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

#define EXPECT_ERROR_HAS(call, text)                                       \
  do {                                                                     \
    const std::string msg_ = error_of([&] { call; });                      \
    EXPECT_NE(msg_.find(text), std::string::npos) << "message: " << msg_; \
  } while (0)

void jpeg(const fs::path& p, int seed, int h = 16, int w = 24) { test::write_bytes(p, test::rgb_jpeg(h, w, seed)); }
void png(const fs::path& p, int seed, int h = 9, int w = 7) { test::write_bytes(p, test::rgb_png(h, w, seed)); }

// train: cat (3 images, one nested), dog (2), zebra (1); val: cat (1), dog (2). Plus files
// that are not images and hidden folders, which are not listed.
fs::path make_tree() {
  const fs::path root = test::fresh_dir("tree");
  jpeg(root / "train/cat/b.jpg", 1);
  png(root / "train/cat/a.PNG", 2);
  jpeg(root / "train/cat/sub/a.jpeg", 3);
  test::write_bytes(root / "train/cat/notes.txt", {'x'});
  jpeg(root / "train/cat/.hidden/c.jpg", 4);
  png(root / "train/dog/z.png", 5);
  jpeg(root / "train/dog/y.JPG", 6);
  png(root / "train/zebra/1.png", 7);
  jpeg(root / "train/.cache/0.jpg", 8);
  png(root / "val/cat/v1.png", 9);
  jpeg(root / "val/dog/v2.jpg", 10);
  jpeg(root / "val/dog/v3.jpg", 11);
  return root;
}

std::vector<std::string> rel(const Dataset& d, const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& f : d.files) out.push_back(fs::path(f).lexically_relative(root).string());
  return out;
}

TEST(ImageFolder, TrainListsClassesAndFilesInTorchvisionOrder) {
  const fs::path root = make_tree();
  const Dataset d = load_dataset("imagefolder", root.string(), Split::train);
  EXPECT_EQ(d.name, "imagefolder");
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.height, 224);
  EXPECT_EQ(d.width, 224);
  EXPECT_TRUE(d.images.empty());
  EXPECT_EQ(d.classes, 3);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog", "zebra"}));
  // Sorted by folder then name, a folder's own files before its sub-folders' ('/' sorts
  // after '.', as os.walk's sorted roots put "cat" before "cat/sub").
  EXPECT_EQ(rel(d, root), (std::vector<std::string>{"train/cat/a.PNG", "train/cat/b.jpg", "train/cat/sub/a.jpeg",
                                                    "train/dog/y.JPG", "train/dog/z.png", "train/zebra/1.png"}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 0, 0, 1, 1, 2}));
  EXPECT_EQ(d.size(), 6);

  const Dataset v = load_dataset("imagefolder", root.string(), Split::test);
  EXPECT_EQ(v.class_names, d.class_names);
  EXPECT_EQ(rel(v, root), (std::vector<std::string>{"val/cat/v1.png", "val/dog/v2.jpg", "val/dog/v3.jpg"}));
  EXPECT_EQ(v.labels, (std::vector<std::int32_t>{0, 1, 1}));

  const Dataset few = load_dataset("imagefolder", root.string(), Split::train, 4);
  EXPECT_EQ(few.size(), 4);
  EXPECT_EQ(few.files, std::vector<std::string>(d.files.begin(), d.files.begin() + 4));
  EXPECT_EQ(few.labels, (std::vector<std::int32_t>{0, 0, 0, 1}));
}

TEST(ImageFolder, FilesAtTheTopOfAFolderSortBeforeDeeperOnes) {
  // "a/b0.jpg" vs "a/b/c.jpg": a plain string sort puts '/' (0x2f) before '0' (0x30);
  // torchvision walks folder "a" before "a/b".
  const fs::path root = test::fresh_dir("order");
  png(root / "train/a/b0.png", 1);
  png(root / "train/a/b/c.png", 2);
  const Dataset d = load_dataset("imagefolder", root.string(), Split::train);
  EXPECT_EQ(rel(d, root), (std::vector<std::string>{"train/a/b0.png", "train/a/b/c.png"}));
}

TEST(ImageFolder, FlatValidationFolderWithLabelsFile) {
  const fs::path root = test::fresh_dir("flat");
  png(root / "train/ant/1.png", 1);
  png(root / "train/bee/1.png", 2);
  png(root / "train/cow/1.png", 3);
  png(root / "val/img 2.png", 4);
  jpeg(root / "val/img1.jpg", 5);
  png(root / "val/img3.png", 6);
  test::write_bytes(root / "val/labels.txt", {});
  const auto labels = [&](const std::string& text) {
    test::write_bytes(root / "val/labels.txt", std::vector<std::uint8_t>(text.begin(), text.end()));
  };
  // Names or indices; blank lines, CRLF and spaces inside file names are fine.
  labels("img1.jpg cow\r\n\nimg 2.png 0\nimg3.png\tbee\n");
  const Dataset v = load_dataset("imagefolder", root.string(), Split::test);
  EXPECT_EQ(rel(v, root), (std::vector<std::string>{"val/img 2.png", "val/img1.jpg", "val/img3.png"}));
  EXPECT_EQ(v.labels, (std::vector<std::int32_t>{0, 2, 1}));
  EXPECT_EQ(v.classes, 3);

  const std::string lpath = (root / "val/labels.txt").string();
  labels("img1.jpg cow\nimg 2.png 0\n");
  EXPECT_ERROR_HAS(load_dataset("imagefolder", root.string(), Split::test), "no label for image " + (root / "val/img3.png").string());
  labels("img1.jpg cow\nimg 2.png 0\nimg3.png bee\nimg4.png ant\n");
  EXPECT_ERROR_HAS(load_dataset("imagefolder", root.string(), Split::test), (root / "val/img4.png").string() + ": listed in");
  labels("img1.jpg cow\nimg 2.png 3\n");
  EXPECT_ERROR_HAS(load_dataset("imagefolder", root.string(), Split::test), lpath + ":2: unknown class '3'");
  labels("img1.jpg horse\n");
  EXPECT_ERROR_HAS(load_dataset("imagefolder", root.string(), Split::test), lpath + ":1: unknown class 'horse'");
  labels("img1.jpg\n");
  EXPECT_ERROR_HAS(load_dataset("imagefolder", root.string(), Split::test), lpath + ":1: expected");
  labels("img1.jpg ant\nimg1.jpg bee\n");
  EXPECT_ERROR_HAS(load_dataset("imagefolder", root.string(), Split::test), lpath + ":2: 'img1.jpg' listed twice");
  fs::remove(root / "val/labels.txt");
  EXPECT_ERROR_HAS(load_dataset("imagefolder", root.string(), Split::test), "need a labels.txt");
}

TEST(ImageFolder, MissingAndEmptyFoldersAreClearErrors) {
  const fs::path root = test::fresh_dir("errors");
  const std::string r = root.string();
  EXPECT_ERROR_HAS(load_dataset("imagefolder", (root / "nope").string(), Split::train),
                   (root / "nope/train").string() + ": no such folder");
  fs::create_directories(root / "train");
  EXPECT_ERROR_HAS(load_dataset("imagefolder", r, Split::train), (root / "train").string() + ": no class folders");
  fs::create_directories(root / "train/cat");
  test::write_bytes(root / "train/cat/readme.txt", {'x'});
  EXPECT_ERROR_HAS(load_dataset("imagefolder", r, Split::train), (root / "train/cat").string() + ": no .jpg");
  png(root / "train/cat/1.png", 1);
  EXPECT_EQ(load_dataset("imagefolder", r, Split::train).size(), 1);
  EXPECT_ERROR_HAS(load_dataset("imagefolder", r, Split::test), (root / "val").string() + ": no such folder");
  fs::create_directories(root / "val");
  EXPECT_ERROR_HAS(load_dataset("imagefolder", r, Split::test), (root / "val").string() + ": no .jpg");
  png(root / "val/wolf/1.png", 2);
  EXPECT_ERROR_HAS(load_dataset("imagefolder", r, Split::test),
                   (root / "val/wolf").string() + ": class folder 'wolf' is not a class of");
}

TEST(ImageFolder, NamesAndNormalization) {
  EXPECT_NE(std::string(dataset_names()).find("imagefolder"), std::string::npos);
  const Normalization n = default_normalization("imagefolder");
  EXPECT_EQ(n.mean, (std::vector<float>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(n.std, (std::vector<float>{0.229f, 0.224f, 0.225f}));
  EXPECT_TRUE(is_image_file_name("x.JpEg"));
  EXPECT_TRUE(is_image_file_name("a.b.png"));
  EXPECT_FALSE(is_image_file_name("png"));
  EXPECT_FALSE(is_image_file_name("x.gif"));
}

TEST(ImageFolder, DatasetImageIsDecodeThenEvalTransform) {
  const fs::path root = test::fresh_dir("view");
  // Grey and CMYK JPEGs, an image smaller than the crop, a large one, and a corrupt file.
  test::JpegSpec grey;
  grey.height = 40;
  grey.width = 30;
  grey.channels = 1;
  grey.in_space = grey.file_space = JCS_GRAYSCALE;
  test::write_bytes(root / "train/a/grey.jpg", test::encode_jpeg(test::block_image(40, 30, 1, 1), grey));
  test::JpegSpec cmyk;
  cmyk.height = 24;
  cmyk.width = 32;
  cmyk.channels = 4;
  cmyk.in_space = cmyk.file_space = JCS_CMYK;
  test::write_bytes(root / "train/a/cmyk.jpg", test::encode_jpeg(test::block_image(24, 32, 2, 4), cmyk));
  png(root / "train/b/tiny.png", 3, 3, 2);
  jpeg(root / "train/b/wide.jpg", 4, 240, 400);
  test::write_bytes(root / "train/b/zz_broken.jpg", {0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00});
  Dataset d = load_dataset("imagefolder", root.string(), Split::train);
  ASSERT_EQ(d.size(), 5);
  std::vector<std::uint8_t> got(static_cast<std::size_t>(d.image_bytes())), want(got.size());
  for (std::int64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(dataset_image(d, i, got.data()));
    eval_transform(decode_image(d.files[i]), kEvalResize, kEvalCrop, want.data());
    EXPECT_EQ(got, want) << d.files[i];
  }
  // The grey image gives three equal planes.
  ASSERT_TRUE(dataset_image(d, 1, got.data()));
  EXPECT_TRUE(std::equal(got.begin(), got.begin() + 224 * 224, got.begin() + 224 * 224));

  const std::string broken = (root / "train/b/zz_broken.jpg").string();
  EXPECT_ERROR_HAS(dataset_image(d, 4, got.data()), broken + ": corrupt JPEG data");
  d.bad_images = BadImages::skip;
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(dataset_image(d, 4, got.data()));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("warning: " + broken + ": corrupt JPEG data"), std::string::npos) << err;
  EXPECT_THROW(dataset_image(d, 5, got.data()), Error);
  EXPECT_THROW(dataset_image(d, -1, got.data()), Error);
}

TEST(ImageFolder, DatasetImageCopiesInMemorySets) {
  Dataset d;
  d.name = "toy";
  d.channels = 1;
  d.height = 2;
  d.width = 3;
  d.images = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  d.labels = {0, 1};
  std::vector<std::uint8_t> out(6);
  ASSERT_TRUE(dataset_image(d, 1, out.data()));
  EXPECT_EQ(out, (std::vector<std::uint8_t>{7, 8, 9, 10, 11, 12}));
  EXPECT_THROW(dataset_image(d, 2, out.data()), Error);
}

}  // namespace
}  // namespace safnet
