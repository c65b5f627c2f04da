#!/usr/bin/env bash
# Installs the Debian packages safnet needs to build, test and run (skips what is present).
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config libopenblas-dev libgtest-dev nlohmann-json3-dev zlib1g-dev
          libboost-context-dev clang-14 libclang-rt-14-dev dataset-fashion-mnist python3-torch python3-torchvision
          libjpeg62-turbo-dev libpng-dev munge slurmctld slurmd slurm-client ccache)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
