// safnet predict and safnet import from the command line: CSV layout, probabilities, logits,
// class names, and a fault trial identical to the one `safnet faults` evaluates.
#include <gtest/gtest.h>

#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/image_decode.h"
#include "data/image_transforms.h"
#include "host/check.h"
#include "host/executor.h"
#include "host/file_io.h"
#include "host/saf.h"
#include "host/safetensors.h"
#include "tests/tools/tool_test_util.h"
#include "app/campaign.h"
#include "tests/skip.h"

namespace safnet {
namespace {

using test::run;

void put_be32(std::string& s, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

void chunk(std::string& png, const char* type, const std::string& data) {
  put_be32(png, static_cast<std::uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  png += body;
  put_be32(png, static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

// An 8-bit RGB PNG of a smooth pattern that differs by `seed`.
void write_png(const std::string& path, int w, int h, int seed) {
  std::string raw;
  for (int y = 0; y < h; ++y) {
    raw += '\0';  // filter: none
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) raw += static_cast<char>((x * (3 + c + seed) + y * (5 + 2 * c) + 40 * seed) % 256);
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string z(size, '\0');
  ASSERT_EQ(compress(reinterpret_cast<Bytef*>(z.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
                     static_cast<uLong>(raw.size())), Z_OK);
  z.resize(size);
  std::string ihdr;
  put_be32(ihdr, static_cast<std::uint32_t>(w));
  put_be32(ihdr, static_cast<std::uint32_t>(h));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit, RGB, deflate, no filter, no interlace
  std::string png = "\x89PNG\r\n\x1a\n";
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", "");
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_file_atomic(path, png);
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
      else if (c == '"') quoted = false;
      else cur += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(split(line));
  return rows;
}

// A small CIFAR-shaped CNN whose weights pass through tanh, as `safnet train` would leave it.
Checkpoint make_checkpoint(int classes, bool names) {
  Checkpoint ck;
  ck.model.arch = "cnn";
  ck.model.classes = classes;
  ck.model.saf = parse_saf("tanh");
  ck.params = init_params(ck.model, 11);
  ck.meta["dataset"] = "cifar10";
  if (names) {
    std::vector<std::string> n;
    for (int i = 0; i < classes; ++i) n.push_back("class " + std::to_string(i));
    n[3] = "cat, \"tabby\"";
    ck.meta["class_names"] = nlohmann::json(n).dump();
  }
  return ck;
}

struct Fixture {
  std::string dir, ckpt;
  std::vector<std::string> images;  // in the order predict lists them
};

Fixture setup(const std::string& name, int classes, bool names) {
  Fixture f;
  f.dir = test::temp_dir(name);
  f.ckpt = f.dir + "/model.safetensors";
  save_checkpoint(f.ckpt, make_checkpoint(classes, names));
  write_png(f.dir + "/img/z.png", 40, 36, 1);
  write_png(f.dir + "/img/b/y.PNG", 32, 32, 2);
  write_png(f.dir + "/img/b/a.png", 64, 48, 3);
  write_file_atomic(f.dir + "/img/notes.txt", std::string("not an image"));
  f.images = {f.dir + "/img/b/a.png", f.dir + "/img/b/y.PNG", f.dir + "/img/z.png"};
  return f;
}

// What predict computes for one image, independently: decode, eval transform to the model's
// 32x32 input, CIFAR-10 normalisation, forward with the given (stored, possibly faulty) params.
std::vector<float> logits_of(const Checkpoint& ck, ParamStore& params, const std::string& file) {
  const Image img = decode_image(file);
  std::vector<std::uint8_t> px(3 * 32 * 32);
  eval_transform(img, 32, 32, px.data());
  const Normalization norm = default_normalization("cifar10");
  Tensor x({1, 3, 32, 32});
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 32 * 32; ++i)
      x.data<float>()[c * 1024 + i] = (px[static_cast<std::size_t>(c * 1024 + i)] / 255.0f - norm.mean[c]) / norm.std[c];
  Graph g;
  const ValueId in = g.input("images", x.shape());
  const ValueId out = build_forward(ck.model, g, in, false);
  Executor ex(g, {out});
  ex.bind_params(params);
  ex.set_input(in, x);
  ex.run();
  const float* l = ex.get(out).data<float>();
  return std::vector<float>(l, l + ck.model.classes);
}

TEST(PredictCli, WritesTopFiveWithNamesAndProbabilities) {
  const Fixture f = setup("predict", 10, true);
  const std::string csv = f.dir + "/preds.csv";
  const auto r = run("predict --checkpoint " + f.ckpt + " --images " + f.dir + "/img --out " + csv + " --batch 2");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = read_csv(csv);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"path", "top1", "top2", "top3", "top4", "top5", "prob1", "prob2",
                                               "prob3", "prob4", "prob5"}));
  const std::vector<std::string> names = nlohmann::json::parse(make_checkpoint(10, true).meta["class_names"]).get<std::vector<std::string>>();
  for (std::size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 11u);
    EXPECT_EQ(rows[i][0], f.images[i - 1]);
    double sum = 0, prev = 1;
    for (int t = 0; t < 5; ++t) {
      EXPECT_NE(std::find(names.begin(), names.end(), rows[i][1 + t]), names.end()) << rows[i][1 + t];
      const double p = std::stod(rows[i][6 + t]);
      EXPECT_GE(p, 0.0);
      EXPECT_LE(p, prev);  // sorted, most probable first
      prev = p;
      sum += p;
    }
    EXPECT_LE(sum, 1.0 + 1e-6);  // five of ten probabilities; printed to 9 digits
    EXPECT_GT(sum, 0.0);
  }
}

// Logits columns, and the top 5 and probabilities follow from them: softmax of the logits,
// highest first. Logits are printed to 9 significant digits (exact for f32), so the check is
// to the rounding of the printed probabilities (9 digits).
TEST(PredictCli, LogitsColumnsAndFewerThanFiveClasses) {
  const Fixture f = setup("predict_logits", 3, false);
  const std::string csv = f.dir + "/preds.csv";
  const auto r = run("predict --checkpoint " + f.ckpt + " --images " + f.images[2] + "," + f.dir + "/img/b --out " + csv + " --logits");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = read_csv(csv);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"path", "top1", "top2", "top3", "prob1", "prob2", "prob3", "logit_0",
                                               "logit_1", "logit_2"}));
  EXPECT_EQ(rows[1][0], f.images[2]);  // files first, in the order given
  EXPECT_EQ(rows[2][0], f.images[0]);
  for (std::size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 10u);
    double l[3], mx = -1e300, z = 0, sum = 0;
    for (int j = 0; j < 3; ++j) mx = std::max(mx, l[j] = std::stod(rows[i][7 + j]));
    for (int j = 0; j < 3; ++j) z += std::exp(l[j] - mx);
    for (int t = 0; t < 3; ++t) {
      const int c = std::stoi(rows[i][1 + t]);  // no class names: indices
      ASSERT_TRUE(c >= 0 && c < 3);
      const double p = std::stod(rows[i][4 + t]);
      EXPECT_NEAR(p, std::exp(l[c] - mx) / z, 1e-8);
      if (t > 0) {
        EXPECT_GE(l[std::stoi(rows[i][t])], l[c]);
      }
      sum += p;
    }
    EXPECT_NEAR(sum, 1.0, 1e-8);
    EXPECT_LE(sum, 1.0 + 3e-9);
  }
}

// A fault trial: predict's logits are those of the model whose stored weights carry exactly that
// trial's flips (Campaign::faulty_model), and differ from the clean ones.
TEST(PredictCli, FaultTrialUsesTheCampaignsFlips) {
  const Fixture f = setup("predict_faults", 10, false);
  const std::string csv = f.dir + "/preds.csv";
  const auto r = run("predict --checkpoint " + f.ckpt + " --images " + f.dir + "/img --out " + csv +
                     " --logits --dtype f16 --ber 1e-3 --seed 3 --trial 2");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = read_csv(csv);
  ASSERT_EQ(rows.size(), 4u);
  const Checkpoint ck = load_checkpoint(f.ckpt);
  CampaignConfig cc;
  cc.dtypes = {DType::f16()};
  cc.bers = {1e-3};
  cc.seed = 3;
  Campaign campaign(ck, "", "cifar10", 0, EvalSet{}, cc, cpu_backend());
  const auto faulty_model = campaign.faulty_model(DType::f16(), 1e-3, 2);
  const auto clean_model = campaign.faulty_model(DType::f16(), 1e-3, -1);
  ParamStore& faulty = faulty_model->params();
  ParamStore& clean = clean_model->params();
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const std::vector<float> want = logits_of(ck, faulty, f.images[i - 1]);
    const std::vector<float> unfaulted = logits_of(ck, clean, f.images[i - 1]);
    double scale = 0, moved = 0;
    for (int j = 0; j < 10; ++j) {
      scale = std::max(scale, std::fabs(double(want[static_cast<std::size_t>(j)])));
      moved = std::max(moved, std::fabs(double(want[static_cast<std::size_t>(j)]) - unfaulted[static_cast<std::size_t>(j)]));
    }
    // Batched and single-image runs sum in different orders: f32 rounding of the scale.
    for (int j = 0; j < 10; ++j)
      EXPECT_NEAR(std::stod(rows[i][11 + static_cast<std::size_t>(j)]), want[static_cast<std::size_t>(j)], 1e-5 * scale) << i << " " << j;
    EXPECT_GT(moved, 1e-3 * scale) << "the trial's flips should change the logits";
  }
}

// faulty_model is the model a campaign trial evaluates: same metrics, bit for bit.
TEST(PredictCli, FaultyParamsAreWhatTheCampaignEvaluates) {
  const Checkpoint ck = make_checkpoint(10, false);
  EvalSet set;
  set.images = Tensor({20, 3, 32, 32});
  for (std::int64_t i = 0; i < set.images.numel(); ++i) set.images.data<float>()[i] = static_cast<float>(std::sin(0.37 * i));
  for (int i = 0; i < 20; ++i) set.labels.push_back(i % 10);
  CampaignConfig cc;
  cc.dtypes = {DType::bf16()};
  cc.bers = {3e-3};
  cc.seed = 5;
  cc.batch = 8;
  Campaign campaign(ck, "id", "cifar10", 0, set, cc, cpu_backend());
  Evaluator ev(ck.model, 8, cpu_backend());
  for (std::int64_t trial : {-1, 0, 4}) {
    const TrialRecord rec = campaign.run_trial(DType::bf16(), 3e-3, trial);
    const auto stored = campaign.faulty_model(DType::bf16(), 3e-3, trial);
    const Metrics m = ev.run(stored->params(), set);
    EXPECT_EQ(m.top1, rec.top1) << trial;
    EXPECT_EQ(m.top5, rec.top5) << trial;
    EXPECT_EQ(m.loss, rec.loss) << trial;
  }
}

TEST(PredictCli, BadInputsAreNamed) {
  const Fixture f = setup("predict_bad", 10, false);
  auto r = run("predict --checkpoint " + f.ckpt + " --images " + f.dir + "/nothing --out " + f.dir + "/p.csv");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find(f.dir + "/nothing"), std::string::npos) << r.output;
  std::filesystem::create_directories(f.dir + "/empty");
  r = run("predict --checkpoint " + f.ckpt + " --images " + f.dir + "/empty --out " + f.dir + "/p.csv");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("no .jpg/.jpeg/.png"), std::string::npos) << r.output;
  r = run("predict --checkpoint " + f.ckpt + " --images " + f.dir + "/img/notes.txt --out " + f.dir + "/p.csv");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("notes.txt"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(f.dir + "/p.csv"));
}

// safnet import on a state dict written here (no PyTorch needed), with class names and dataset.
TEST(ImportCli, WritesACheckpointAndListsProblems) {
  const std::string dir = test::temp_dir("import_cli");
  ModelConfig cfg;
  cfg.arch = "cnn";
  cfg.classes = 4;
  SafetensorsFile sd;
  const ParamStore params = init_params(cfg, 2);
  for (const ParamInfo& p : params.all()) sd.tensors.emplace_back(p.name, p.value);
  sd.tensors.emplace_back("bn1.num_batches_tracked", Tensor({}, DType::i32()));
  write_safetensors(dir + "/w.safetensors", sd);
  write_file_atomic(dir + "/names.txt", std::string("ant\nbee\ncat\ndog\n"));
  auto r = run("import --model cnn --weights " + dir + "/w.safetensors --out " + dir + "/ck.safetensors --dataset cifar10 --class-names " + dir + "/names.txt");
  ASSERT_EQ(r.code, 0) << r.output;
  const Checkpoint ck = load_checkpoint(dir + "/ck.safetensors");
  EXPECT_EQ(ck.model.classes, 4);
  EXPECT_EQ(ck.meta.at("dataset"), "cifar10");
  EXPECT_EQ(ck.meta.at("class_names"), "[\"ant\",\"bee\",\"cat\",\"dog\"]");
  sd.tensors.erase(sd.tensors.begin());  // conv1.weight
  sd.tensors.emplace_back("extra.weight", Tensor({2}));
  write_safetensors(dir + "/bad.safetensors", sd);
  r = run("import --model cnn --weights " + dir + "/bad.safetensors --out " + dir + "/ck2.safetensors");
  EXPECT_NE(r.code, 0);
  for (const char* s : {"bad.safetensors", "missing 1: conv1.weight", "unexpected 1: extra.weight"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << " not in " << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/ck2.safetensors"));
}

// safnet train --init: a pretrained checkpoint starts a SAF run at raw = tau^-1(W), and
// --recipe imagenet-finetune sets the fine-tuning defaults while explicit flags win.
TEST(TrainInitCli, StartsFromInverseSafAndTakesTheRecipe) {
  if (!std::filesystem::exists(test::cifar_subset() + "/data_batch_1.bin"))
    SAFNET_SKIP_OR_FAIL("no CIFAR-10 subset at " << test::cifar_subset() << " (it sits beside the checkout)");
  const std::string dir = test::temp_dir("train_init");
  Checkpoint pre;
  pre.model.arch = "cnn";
  pre.params = init_params(pre.model, 8);
  pre.meta["dataset"] = "cifar10";
  save_checkpoint(dir + "/pre.safetensors", pre);
  const std::string common = "train --init " + dir + "/pre.safetensors --dataset cifar10 --data " + test::cifar_subset() +
                             " --limit 64 --batch 32 --epochs 1 --quiet --augment none";
  auto r = run(common + " --saf tanh --recipe imagenet-finetune --out " + dir + "/inv");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("init from"), std::string::npos) << r.output;
  const Checkpoint ck = load_checkpoint(dir + "/inv/checkpoint.safetensors");
  EXPECT_EQ(ck.model.arch, "cnn");  // taken from --init
  EXPECT_EQ(ck.model.saf.kind, SafKind::tanh);
  const auto config = nlohmann::json::parse(ck.meta.at("config"));
  EXPECT_EQ(config.at("optimizer"), "adamw");
  EXPECT_EQ(config.at("lr"), "1e-5");
  EXPECT_EQ(config.at("wd"), "1e-3");
  EXPECT_EQ(config.at("schedule"), "cosine");
  EXPECT_EQ(config.at("epochs"), "1");  // explicit flags win over the recipe
  EXPECT_EQ(config.at("batch"), "32");
  // Two AdamW steps of lr 1e-5 move a raw weight by at most 2 * 1e-5 * (1 - b1) / sqrt(1 - b2)
  // = 6.4e-5 (Kingma & Ba's bound on one step) plus a decay of lr * wd * |raw|: well under 1e-4,
  // while tanh^-1 moves these weights from W by up to several 1e-3.
  const Tensor& w0 = pre.params.at("conv2.weight").value;
  const Tensor& w1 = ck.params.at("conv2.weight").value;
  double bent = 0;
  for (std::int64_t i = 0; i < w0.numel(); ++i) {
    const float w = w0.data<float>()[i];
    bent = std::max(bent, std::fabs(std::atanh(static_cast<double>(w)) - w));
    ASSERT_NEAR(w1.data<float>()[i], std::atanh(w), 1e-4) << i;
  }
  EXPECT_GT(bent, 1e-3);

  r = run(common + " --saf tanh --init-mode raw --optimizer adamw --lr 1e-5 --out " + dir + "/raw");
  ASSERT_EQ(r.code, 0) << r.output;
  const Tensor w2 = load_checkpoint(dir + "/raw/checkpoint.safetensors").params.at("conv2.weight").value;
  for (std::int64_t i = 0; i < w0.numel(); ++i) ASSERT_NEAR(w2.data<float>()[i], w0.data<float>()[i], 1e-4) << i;

  r = run(common + " --model resnet20 --out " + dir + "/bad");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("holds a cnn"), std::string::npos) << r.output;
  r = run(common + " --recipe imagenet --out " + dir + "/bad2");
  EXPECT_NE(r.output.find("unknown --recipe 'imagenet'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace safnet
