// The safnet command line: help, clear errors on bad flags, values and files, nothing overwritten.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "host/file_io.h"
#include "tests/tools/tool_test_util.h"
#include "tests/skip.h"

namespace safnet {
namespace {

using test::run;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* cmd : {"train", "eval", "faults", "report", "merge"}) {
    const auto r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_TRUE(contains(r.output, "usage: safnet " + std::string(cmd))) << r.output;
  }
  EXPECT_EQ(run("--help").code, 0);
  EXPECT_NE(run("").code, 0);
}

TEST(Cli, UnknownCommandFlagAndValuesAreNamed) {
  auto r = run("frobnicate");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "unknown command 'frobnicate'")) << r.output;
  r = run("train --epochz 3 --out /tmp/x");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "--epochz")) << r.output;
  r = run("train --model resnet21 --out " + test::temp_dir("badmodel"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "unknown model 'resnet21'") && contains(r.output, "resnet110")) << r.output;
  r = run("train --saf tanhh --out " + test::temp_dir("badsaf"));
  EXPECT_TRUE(contains(r.output, "unknown SAF 'tanhh'") && contains(r.output, "softsign")) << r.output;
  r = run("train --dataset imagenet --data /tmp --out " + test::temp_dir("badds"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "imagenet") && contains(r.output, "cifar100")) << r.output;
  r = run("train --epochs many --out /tmp/x");
  EXPECT_TRUE(contains(r.output, "--epochs needs an integer, got 'many'")) << r.output;
  r = run("eval --checkpoint x --dtype fixed3.5");
  EXPECT_TRUE(contains(r.output, "fixed3.5")) << r.output;
}

TEST(Cli, MissingDataDirectoryNamesTheFiles) {
  const std::string dir = test::temp_dir("nodata");
  const auto r = run("train --dataset cifar10 --data " + dir + " --out " + dir + "/run");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, dir) && contains(r.output, "data_batch_1.bin")) << r.output;
}

TEST(Cli, TruncatedCheckpointIsRejectedByName) {
  const std::string dir = test::temp_dir("badckpt");
  const std::string f = dir + "/model.safetensors";
  write_file_atomic(f, std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", 13));
  const auto r = run("eval --checkpoint " + f + " --dataset fashion-mnist");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, f)) << r.output;
}

TEST(Cli, TrainRefusesToOverwriteAnExistingRun) {
  if (!test::have_fashion_mnist()) SAFNET_SKIP_OR_FAIL("dataset-fashion-mnist is not installed");
  const std::string dir = test::temp_dir("norewrite");
  const std::string common = " --model mlp --dataset fashion-mnist --limit 256 --epochs 1 --batch 64 --quiet --out " + dir;
  ASSERT_EQ(run("train" + common).code, 0);
  const auto before = read_file(dir + "/checkpoint.safetensors");
  const auto r = run("train" + common);
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "already holds a run")) << r.output;
  EXPECT_EQ(read_file(dir + "/checkpoint.safetensors"), before);
  // --resume with the run already complete changes nothing either.
  EXPECT_EQ(run("train --resume" + common).code, 0);
}

}  // namespace
}  // namespace safnet
