# Recipes for the PAR workspace (https://github.com/casey/just). Every recipe is a plain cargo or
# script call, so the commands also work without `just`.

default:
    @just --list

# The full test suite exactly as CI runs it (installs lavapipe if missing; wgpu + CUDA type-check).
test:
    scripts/test.sh

# Tests on the default CPU backends only (flex, ndarray): the quick loop while developing.
test-cpu:
    cargo test --workspace

# Formatting, lints (warnings are errors) and docs.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --features par-tests/wgpu -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Type-check the CUDA path offline (linking needs cubecl-llvm's LLVM download; see README).
check-cuda:
    DOCS_RS=1 cargo check -p par-cli --features cuda

# The main job: PAR end to end on the embedded Fashion-MNIST subset (README Quickstart).
demo:
    cargo run --release -p experiments --bin demo

# The PAR order of the paper's 8×8 figure and the 24×24 step counts.
order-demo:
    cargo run --release -p par-cli --bin par -- order --grid 8 --parallel 4 --format text
    cargo run --release -p par-cli --bin par -- order --grid 24 --parallel 16 --format text

# Benchmarks (JSON + markdown under runs/): the ordering on flex and ndarray.
bench:
    cargo run --release -p experiments --bin bench_order -- --backend flex --out runs/bench_order/flex
    cargo run --release -p experiments --bin bench_order -- --backend ndarray --out runs/bench_order/ndarray
    cargo run --release -p experiments --bin bench_latency -- --out runs/bench_latency

# Regenerate the transformer golden fixtures (needs Debian's python3-torch).
golden:
    /usr/bin/python3 tests/golden/gen_transformer_fixtures.py
