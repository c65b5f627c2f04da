// SAF names.
#include "host/saf.h"

#include <sstream>

#include "host/check.h"

namespace safnet {

Saf parse_saf(const std::string& name, float c, const std::string& nan_mode) {
  Saf s;
  s.c = c;
  if (name == "none") s.kind = SafKind::none;
  else if (name == "tanh") s.kind = SafKind::tanh;
  else if (name == "tanh_c") s.kind = SafKind::tanh_c;
  else if (name == "softsign") s.kind = SafKind::softsign;
  else if (name == "arctan") s.kind = SafKind::arctan;
  else if (name == "arctan2pi") s.kind = SafKind::arctan2pi;
  else fail("unknown SAF '", name, "' (valid: none tanh tanh_c softsign arctan arctan2pi)");
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
