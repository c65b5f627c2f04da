// The CUDA simulator: what a .cu kernel file sees in place of the CUDA toolkit under the host compiler.
#pragma once
#include "cuda/sim/device.h"
#include "cuda/sim/exec.h"
#include "cuda/sim/runtime.h"
