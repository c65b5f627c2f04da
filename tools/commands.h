// The subcommands of the safnet CLI; each returns the process exit code.
#pragma once

namespace safnet {

int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_faults(int argc, char** argv);
int cmd_report(int argc, char** argv);
int cmd_merge(int argc, char** argv);
int cmd_import(int argc, char** argv);
int cmd_predict(int argc, char** argv);

}  // namespace safnet
