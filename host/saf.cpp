// SAF names.
#include "host/saf.h"

#include <algorithm>
#include <sstream>

#include "host/check.h"

namespace safnet {

const std::vector<std::string>& saf_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (int k = 0; k <= static_cast<int>(SafKind::arctan2pi); ++k) v.push_back(saf_name(static_cast<SafKind>(k)));
    return v;
  }();
  return names;
}

Saf parse_saf(const std::string& name, float c, const std::string& nan_mode) {
  Saf s;
  s.c = c;
  const std::vector<std::string>& names = saf_names();
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) {
    std::string valid;
    for (const std::string& n : names) valid += (valid.empty() ? "" : " ") + n;
    fail("unknown SAF '", name, "' (valid: ", valid, ")");
  }
  s.kind = static_cast<SafKind>(it - names.begin());
  if (s.kind == SafKind::tanh_c && !(c > 0.0f)) fail("SAF tanh_c needs a positive --saf-c, got ", c);
  if (nan_mode == "propagate") s.nan = NanMode::propagate;
  else if (nan_mode == "zero") s.nan = NanMode::zero;
  else fail("unknown NaN mode '", nan_mode, "' (valid: propagate zero)");
  return s;
}

std::string saf_name(SafKind kind) {
  switch (kind) {
    case SafKind::none: return "none";
    case SafKind::tanh: return "tanh";
    case SafKind::tanh_c: return "tanh_c";
    case SafKind::softsign: return "softsign";
    case SafKind::arctan: return "arctan";
    case SafKind::arctan2pi: return "arctan2pi";
  }
  return "?";
}

std::string nan_mode_name(NanMode mode) { return mode == NanMode::zero ? "zero" : "propagate"; }

std::string saf_display_name(const Saf& saf) {
  switch (saf.kind) {
    case SafKind::none: return "None";
    case SafKind::tanh: return "Tanh";
    case SafKind::tanh_c: {
      std::ostringstream os;
      os << "Tanh" << saf.c;
      return os.str();
    }
    case SafKind::softsign: return "Softsign";
    case SafKind::arctan: return "Arctan";
    case SafKind::arctan2pi: return "Arctan2/pi";
  }
  return "?";
}

}  // namespace safnet
