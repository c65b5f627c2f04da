// ImageNet-layout folder listing, labels.txt parsing, and per-image decode + transform.
#include "data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include "data/image_decode.h"
#include "data/image_transforms.h"
#include "host/check.h"
#include "host/file_io.h"

namespace safnet {

namespace {

namespace fs = std::filesystem;

constexpr const char* kLabelsFile = "labels.txt";

bool hidden(const fs::path& p) { return p.filename().string().starts_with("."); }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void require_folder(const fs::path& p, const char* what) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) fail(p.string(), ": no such folder (", what, ")");
}

// Image files under `folder`, at any depth, in the order of torchvision's
// sorted(os.walk(folder)) then sorted(file names): by containing folder, then by name.
std::vector<std::string> list_images(const fs::path& folder) {
  std::vector<std::pair<std::string, std::string>> found;  // (folder, file name)
  std::error_code ec;
  fs::recursive_directory_iterator it(folder, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) fail(folder.string(), ": cannot list: ", ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) fail(folder.string(), ": cannot list: ", ec.message());
    const fs::path& p = it->path();
    std::error_code kind;  // an entry that cannot be examined is not an image
    if (hidden(p)) {
      if (it->is_directory(kind)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(kind) && is_image_file_name(p.filename().string()))
      found.emplace_back(p.parent_path().string(), p.filename().string());
  }
  if (ec) fail(folder.string(), ": cannot list: ", ec.message());
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  paths.reserve(found.size());
  for (const auto& [dir, name] : found) paths.push_back((fs::path(dir) / name).string());
  return paths;
}

// Sorted names of the non-hidden entries directly in `folder` that `keep(entry)` accepts.
template <class Keep>
std::vector<std::string> sorted_entries(const fs::path& folder, Keep keep) {
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(folder, ec), end;
  if (ec) fail(folder.string(), ": cannot list: ", ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) fail(folder.string(), ": cannot list: ", ec.message());
    if (!hidden(it->path()) && keep(*it)) names.push_back(it->path().filename().string());
  }
  if (ec) fail(folder.string(), ": cannot list: ", ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// An entry that cannot be examined is neither a folder nor an image.
std::vector<std::string> sub_folders(const fs::path& folder) {
  return sorted_entries(folder, [](const fs::directory_entry& e) {
    std::error_code kind;
    return e.is_directory(kind);
  });
}

// Images directly in `folder` (not in sub-folders).
std::vector<std::string> loose_images(const fs::path& folder) {
  return sorted_entries(folder, [](const fs::directory_entry& e) {
    std::error_code kind;
    return is_image_file_name(e.path().filename().string()) && e.is_regular_file(kind);
  });
}

void add_class_folders(Dataset& d, const fs::path& folder, const std::vector<std::string>& classes,
                       const std::string& train_dir) {
  for (const std::string& name : sub_folders(folder)) {
    const auto pos = std::lower_bound(classes.begin(), classes.end(), name);
    const fs::path sub = folder / name;
    if (pos == classes.end() || *pos != name)
      fail(sub.string(), ": class folder '", name, "' is not a class of ", train_dir);
    const std::vector<std::string> files = list_images(sub);
    if (files.empty()) fail(sub.string(), ": no .jpg, .jpeg or .png images in the class folder");
    const auto label = static_cast<std::int32_t>(pos - classes.begin());
    d.files.insert(d.files.end(), files.begin(), files.end());
    d.labels.insert(d.labels.end(), files.size(), label);
  }
}

void add_labelled_images(Dataset& d, const fs::path& folder, const std::vector<std::string>& classes) {
  const fs::path labels_path = folder / kLabelsFile;
  const std::vector<std::uint8_t> bytes = read_file(labels_path.string());
  const auto listed = parse_image_labels(std::string(bytes.begin(), bytes.end()), labels_path.string(), classes);
  std::map<std::string, std::int32_t> label_of(listed.begin(), listed.end());
  for (const std::string& name : loose_images(folder)) {
    const auto it = label_of.find(name);
    if (it == label_of.end()) fail(labels_path.string(), ": no label for image ", (folder / name).string());
    d.files.push_back((folder / name).string());
    d.labels.push_back(it->second);
    label_of.erase(it);
  }
  if (!label_of.empty())
    fail((folder / label_of.begin()->first).string(), ": listed in ", labels_path.string(),
         " but not an image file in the folder");
}

}  // namespace

bool is_image_file_name(const std::string& name) {
  const std::string ext = lower(fs::path(name).extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<std::string> image_folder_classes(const std::string& train_dir) {
  require_folder(train_dir, "expected the ImageNet layout DIR/train/<class>/<image>");
  std::vector<std::string> classes = sub_folders(train_dir);
  if (classes.empty()) fail(train_dir, ": no class folders (expected DIR/train/<class>/<image>)");
  return classes;
}

std::vector<std::pair<std::string, std::int32_t>> parse_image_labels(const std::string& text, const std::string& path,
                                                                     const std::vector<std::string>& classes) {
  std::map<std::string, std::int32_t> index_of;
  for (std::size_t c = 0; c < classes.size(); ++c) index_of[classes[c]] = static_cast<std::int32_t>(c);
  std::vector<std::pair<std::string, std::int32_t>> out;
  std::set<std::string> seen;
  std::size_t pos = 0, line_no = 0;
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    while (!line.empty() && space(line.back())) line.pop_back();
    std::size_t start = 0;
    while (start < line.size() && space(line[start])) ++start;
    line.erase(0, start);
    if (line.empty()) continue;
    // The class is the last field, so file names may hold spaces.
    std::size_t cut = line.size();
    while (cut > 0 && !space(line[cut - 1])) --cut;
    const std::string cls = line.substr(cut);
    std::size_t name_end = cut;
    while (name_end > 0 && space(line[name_end - 1])) --name_end;
    if (name_end == 0) fail(path, ":", line_no, ": expected '<file name> <class name or index>', got '", line, "'");
    const std::string name = line.substr(0, name_end);
    std::int32_t label = -1;
    if (const auto it = index_of.find(cls); it != index_of.end()) {
      label = it->second;
    } else if (cls.size() <= 9 && std::all_of(cls.begin(), cls.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      const long v = std::stol(cls);
      if (v < static_cast<long>(classes.size())) label = static_cast<std::int32_t>(v);
    }
    if (label < 0)
      fail(path, ":", line_no, ": unknown class '", cls, "' (not a class folder name nor an index below ",
           classes.size(), ")");
    if (!seen.insert(name).second) fail(path, ":", line_no, ": '", name, "' listed twice");
    out.emplace_back(name, label);
  }
  return out;
}

Dataset load_image_folder(const std::string& dir, Split split, std::int64_t limit) {
  const fs::path root(dir);
  const std::string train_dir = (root / "train").string();
  Dataset d;
  d.name = "imagefolder";
  d.channels = 3;
  d.height = d.width = kTrainCrop;
  d.class_names = image_folder_classes(train_dir);
  d.classes = static_cast<int>(d.class_names.size());
  const fs::path folder = split == Split::train ? root / "train" : root / "val";
  require_folder(folder, "expected the ImageNet layout DIR/val/<class>/<image> or DIR/val/<image> + labels.txt");
  std::error_code ec;
  if (split == Split::test && fs::exists(folder / kLabelsFile, ec))
    add_labelled_images(d, folder, d.class_names);
  else
    add_class_folders(d, folder, d.class_names, train_dir);
  if (d.files.empty() && split == Split::test && !loose_images(folder).empty())
    fail(folder.string(), ": images directly in the folder need a ", kLabelsFile, " of '<file name> <class>' lines");
  if (d.files.empty())
    fail(folder.string(), ": no .jpg, .jpeg or .png images (expected <class>/<image>",
         split == Split::test ? ", or images with a labels.txt" : "", ")");
  truncate_dataset(d, limit);
  return d;
}

void transform_folder_image(const Dataset& d, std::int64_t i, const TrainDrawKey* train, std::uint8_t* out) {
  if (i < 0 || i >= static_cast<std::int64_t>(d.files.size()))
    fail("data set '", d.name, "': image ", i, " outside its ", d.files.size(), " files");
  if (d.channels != 3 || d.height <= 0 || d.height != d.width)
    fail("data set '", d.name, "': image folders give square RGB images, not ", d.channels, " x ", d.height, " x ",
         d.width);
  const std::string& path = d.files[static_cast<std::size_t>(i)];
  const Image img = decode_image(path);
  if (train) {
    const ResizedCropDraw draw = draw_resized_crop(train->seed, train->epoch, i, img.height, img.width, true);
    train_transform(img, draw, d.height, out);
  } else {
    eval_transform(img, d.height * kEvalResize / kEvalCrop, d.height, out);
  }
}

}  // namespace safnet
