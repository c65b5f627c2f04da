// SAFs on the host: the functions of cuda/saf.h (shared with the kernels) and the names users type
// on the command line and store in checkpoints.
#pragma once
#include <string>
#include <vector>

#include "cuda/saf.h"

namespace safnet {

// The names parse_saf accepts, in SafKind order: none tanh tanh_c softsign arctan arctan2pi.
const std::vector<std::string>& saf_names();
// One of saf_names(); c is used by tanh_c. Throws listing valid names.
Saf parse_saf(const std::string& name, float c = 1.0f, const std::string& nan_mode = "propagate");
std::string saf_name(SafKind kind);
std::string nan_mode_name(NanMode mode);
// Display name as in the paper's tables: None, Tanh, Tanh0.5, Softsign, Arctan.
std::string saf_display_name(const Saf& saf);

}  // namespace safnet
