// Command-line parsing.
#include "tools/args.h"

#include <cstdio>
#include <sstream>

#include "host/check.h"

namespace safnet {

Args& Args::opt(const std::string& name, const std::string& def, const std::string& help) {
  order_.push_back(name);
  specs_[name] = Spec{def, help, false};
  return *this;
}

Args& Args::flag(const std::string& name, const std::string& help) {
  order_.push_back(name);
  specs_[name] = Spec{"", help, true};
  return *this;
}

const Args::Spec& Args::spec(const std::string& name) const {
  auto it = specs_.find(name);
  SAFNET_CHECK(it != specs_.end(), "flag --", name, " not declared by ", command_);
  return it->second;
}

Args& Args::positionals(const std::string& help) {
  positional_help_ = help;
  return *this;
}

bool Args::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage().c_str(), stdout);
      return false;
    }
    if (a.rfind("--", 0) != 0) {
      if (positional_help_.empty()) fail("safnet ", command_, ": unexpected argument '", a, "' (see --help)");
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    const auto eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto it = specs_.find(name);
    if (it == specs_.end()) {
      std::string valid;
      for (const auto& n : order_) valid += " --" + n;
      fail("safnet ", command_, ": unknown flag --", name, " (valid:", valid, ")");
    }
    if (it->second.is_flag) {
      if (inline_value) fail("safnet ", command_, ": --", name, " takes no value");
      value = "1";
    } else if (!inline_value) {
      if (i + 1 >= argc) fail("safnet ", command_, ": --", name, " needs a value");
      value = argv[++i];
    }
    given_[name] = value;
  }
  return true;
}

bool Args::has(const std::string& name) const {
  spec(name);
  return given_.count(name) > 0;
}

void Args::require(std::initializer_list<const char*> names) const {
  for (const char* name : names)
    if (!has(name)) fail("safnet ", command_, ": --", name, " is required");
}

std::string Args::str(const std::string& name) const {
  const Spec& s = spec(name);
  auto it = given_.find(name);
  return it != given_.end() ? it->second : s.def;
}

std::int64_t Args::integer(const std::string& name) const {
  const std::string v = str(name);
  try {
    std::size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (...) {
  }
  fail("safnet ", command_, ": --", name, " needs an integer, got '", v, "'");
}

double Args::number(const std::string& name) const {
  const std::string v = str(name);
  try {
    std::size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size()) return x;
  } catch (...) {
  }
  fail("safnet ", command_, ": --", name, " needs a number, got '", v, "'");
}

bool Args::on(const std::string& name) const {
  spec(name);
  return given_.count(name) > 0;
}

std::vector<std::string> Args::list(const std::string& name) const {
  std::vector<std::string> out;
  std::stringstream ss(str(name));
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string Args::usage() const {
  std::ostringstream os;
  os << "usage: safnet " << command_ << " [flags]" << (positional_help_.empty() ? "" : " [" + positional_help_ + "...]")
     << "\n\n" << summary_ << "\n\nflags:\n";
  for (const auto& n : order_) {
    const Spec& s = specs_.at(n);
    std::string left = "  --" + n + (s.is_flag ? "" : " V");
    os << left << std::string(left.size() < 26 ? 26 - left.size() : 1, ' ') << s.help;
    if (!s.is_flag && !s.def.empty()) os << " [" << s.def << "]";
    os << "\n";
  }
  os << "  --help                  this text\n";
  return os.str();
}

std::map<std::string, std::string> Args::values() const {
  std::map<std::string, std::string> out;
  for (const auto& n : order_) {
    const Spec& s = specs_.at(n);
    if (s.is_flag) out[n] = on(n) ? "true" : "false";
    else out[n] = str(n);
  }
  return out;
}

}  // namespace safnet
