// Flags and setup shared by the subcommands: data set selection, threads, model flags, device.
#pragma once
#include <string>

#include "data/dataset.h"
#include "host/backend.h"
#include "models/checkpoint.h"
#include "models/model.h"
#include "tools/args.h"

namespace safnet {

// --dataset --data --limit --threads
void add_data_flags(Args& a, const std::string& default_dataset);
// The data set's directory: --data, or the Debian package's folder for (fashion-)mnist.
std::string data_dir(const Args& a, const std::string& dataset);
// Loads a split of `dataset` (by default --dataset) honouring --data and --limit.
Dataset load_split(const Args& a, Split split, const std::string& dataset = "");
// Applies --threads (0 = all cores) to OpenMP; the kernels keep OpenBLAS on the calling thread.
void apply_threads(const Args& a);

// --model --saf --saf-c --saf-nan --no-saf-first --no-saf-last
void add_model_flags(Args& a);
ModelConfig model_config(const Args& a, const Dataset& data);

// --device, defaulting to auto, and --math.
void add_device_flag(Args& a);
// The backend --device names (printing which one when not quiet), set to the --math mode.
Backend& backend_from_flags(const Args& a, bool quiet = false);

// --math: how conv2d and linear forwards and backward-data multiply (cuda/math_mode.h), fp32
// unless given.
void add_math_flag(Args& a);
// Sets `b` to the --math mode; a backend without it (the CPU) refuses anything but fp32.
void apply_math_flag(const Args& a, Backend& b);

// --nan-logits: how top-1/top-5 rank a NaN logit.
void add_nan_logits_flag(Args& a);

// --dataset, or the data set the checkpoint was trained on.
std::string checkpoint_dataset(const Args& a, const Checkpoint& ck);

std::string format_percent(double v);  // "91.23"

}  // namespace safnet
