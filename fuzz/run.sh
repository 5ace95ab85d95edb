#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30), one after another, seeded from
# fuzz/seeds/<target> and growing fuzz/corpus/<target>; prints each target's
# executions and stops at the first crash (the input lands in fuzz/artifacts/<target>).
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
targets="${2:-$(cargo +nightly fuzz list)}"
for target in $targets; do
    mkdir -p "corpus/$target"
    log="$(mktemp)"
    if ! cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $target CRASHED (see fuzz/artifacts/$target)"
        exit 1
    fi
    runs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')"
    echo "fuzz: $target ${seconds}s ${runs:-?} executions, 0 crashes"
    rm -f "$log"
done
