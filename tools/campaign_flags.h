// Parsers of the campaign flags --shard and --ber.
#pragma once
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "app/results.h"

namespace safnet {

// Reads an environment variable; nullptr when unset (std::getenv, or a map in tests).
using EnvLookup = std::function<const char*(const char*)>;

// Parses "k/n" with 0 <= k < n, or takes the shard from the Slurm job array task running it:
// "slurm": k = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN and n = SLURM_ARRAY_TASK_COUNT (an
// array such as --array=0-15); "slurm/N": k = SLURM_ARRAY_TASK_ID of N shards (an array that
// runs only some of them, such as --array=3,7 after a failure). Throws naming the text, or the
// variable and the array job it expects.
Shard parse_shard(const std::string& text, const EnvLookup& env = std::getenv);

// True for the spellings that take the shard from Slurm.
bool shard_from_slurm(const std::string& text);

// The results file of one shard of a campaign written to `out`: "all.jsonl" -> "all.shard-03-of-16.jsonl"
// (k zero-padded to n's width, so the files sort in shard order).
std::string shard_results_path(const std::string& out, Shard shard);

// Parses "1e-6,1e-5,1e-4": each value a finite number in [0, 1]; throws naming the bad item.
std::vector<double> parse_ber_list(const std::string& text);

}  // namespace safnet
