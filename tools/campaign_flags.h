// Parsers of the campaign flags --shard and --ber.
#pragma once
#include <string>
#include <vector>

#include "app/results.h"

namespace safnet {

// Parses "k/n" with 0 <= k < n; throws naming the text.
Shard parse_shard(const std::string& text);

// Parses "1e-6,1e-5,1e-4": each value a finite number in [0, 1]; throws naming the bad item.
std::vector<double> parse_ber_list(const std::string& text);

}  // namespace safnet
