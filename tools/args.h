// A small command-line parser: each subcommand declares its flags with defaults and help text;
// unknown flags and bad values are errors naming the flag and listing what is valid.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

namespace safnet {

class Args {
 public:
  Args(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

  // A flag taking a value ("" default = no default).
  Args& opt(const std::string& name, const std::string& def, const std::string& help);
  // A boolean switch (--name sets it).
  Args& flag(const std::string& name, const std::string& help);

  // Arguments that are not flags are collected (e.g. input files) instead of rejected.
  Args& positionals(const std::string& help);
  const std::vector<std::string>& positional() const { return positional_; }

  // Parses argv[first..]. Returns false when --help was given (usage already printed).
  bool parse(int argc, char** argv, int first);

  bool has(const std::string& name) const;  // given on the command line
  // Fails naming the first of `names` not given on the command line.
  void require(std::initializer_list<const char*> names) const;
  std::string str(const std::string& name) const;
  std::int64_t integer(const std::string& name) const;
  double number(const std::string& name) const;
  bool on(const std::string& name) const;
  std::vector<std::string> list(const std::string& name) const;  // comma separated
  std::string usage() const;
  // Every flag and its value, for recording a run's configuration.
  std::map<std::string, std::string> values() const;

 private:
  struct Spec {
    std::string def, help;
    bool is_flag = false;
  };
  const Spec& spec(const std::string& name) const;
  std::string command_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Spec> specs_;
  std::map<std::string, std::string> given_;
  std::string positional_help_;  // empty: no positional arguments
  std::vector<std::string> positional_;
};

}  // namespace safnet
