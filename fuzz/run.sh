#!/usr/bin/env bash
# Builds every fuzz target and runs each for $FUZZ_SECONDS (default 20)
# from the seeds in fuzz/seeds/<target>, failing on a panic or on memory
# beyond the limits below. cargo-fuzz needs the nightly-only sanitizer
# flags; RUSTC_BOOTSTRAP lets the machine's stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${FUZZ_SECONDS:-20}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
targets=$(cargo fuzz list)
cargo fuzz build
for target in $targets; do
    mkdir -p "corpus/$target"
    echo "fuzzing $target for ${SECONDS_EACH}s"
    cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=1024 -malloc_limit_mb=512 \
        -max_len=4096 -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|thread)" || true
    # libFuzzer leaves a crash-*/oom-*/leak-* file behind for every finding.
    if compgen -G "artifacts/$target/*" >/dev/null; then
        echo "$target found: $(ls "artifacts/$target")"
        exit 1
    fi
done
echo "fuzz targets: $(echo $targets | wc -w) ran without a finding"
