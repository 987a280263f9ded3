#!/usr/bin/env bash
# The project's test command (README, CI). On a fresh Debian/Ubuntu machine with Rust it installs
# what the tests need (lavapipe, Mesa's software Vulkan driver, for the wgpu tests; numpy to re-read
# the .npz the sampler writes; ffmpeg for the video clip tests), then:
#   0. checks the formatting (rustfmt) and the lints (clippy, warnings are errors) of every crate
#      and target, with wgpu compiled in;
#   1. builds and runs the whole workspace's tests with the default backends (flex, ndarray) plus
#      wgpu, so the wgpu path is compiled and tested on every run;
#   2. type-checks the CUDA path offline (DOCS_RS=1 makes cubecl-llvm skip its LLVM download;
#      linking CUDA is impossible without it, see README "CUDA").
# Usage: scripts/test.sh [--no-cuda-check]
set -euo pipefail
cd "$(dirname "$0")/.."

have_lavapipe() {
  ldconfig -p | grep -q 'libvulkan\.so\.1' && compgen -G '/usr/share/vulkan/icd.d/lvp_icd*.json' >/dev/null
}
need=()
have_lavapipe || need+=(mesa-vulkan-drivers libvulkan1)
# numpy re-reads the ADM .npz that `par sample --npz` writes (the test skips that check without it).
python3 -c 'import numpy' 2>/dev/null || need+=(python3-numpy)
# ffmpeg decodes the video clips (par-data's clip reader spawns it; its tests make and read videos).
command -v ffmpeg >/dev/null || need+=(ffmpeg)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} for the tests" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features par-tests/wgpu -- -D warnings

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"  # silences lavapipe's WSI warning
# wgpu picks lavapipe when no GPU is present; on a machine with a GPU it uses the GPU.
cargo test --workspace --features par-tests/wgpu

if [ "${1:-}" != "--no-cuda-check" ]; then
  DOCS_RS=1 cargo check -p par-cli --features cuda
fi
