// Entry point shared by every test binary.
#include <gtest/gtest.h>

#include "tests/test_dir.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  safnet::test::remove_scratch_dirs(rc == 0);
  return rc;
}
