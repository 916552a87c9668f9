#!/usr/bin/env bash
# What the release profile in Cargo.toml costs in build time: a clean `cargo build --release` of
# the smtptls binary with cargo's default release profile, then with ours (fat LTO, one codegen
# unit, stripped), each in its own fresh target directory, then an incremental rebuild of each
# after touching src/lib.rs (what a developer waits for). Prints wall and CPU (user+sys) time and
# the binary size. Takes 10-15 minutes on 2 cores; the registry must be reachable or the crates
# already downloaded (`cargo fetch`). The table also goes to bench/build-time.md.
#
#   bash bench/build-time.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -x /usr/bin/time ]] || {
    echo "build-time.sh: needs GNU time (/usr/bin/time; apt-get install time)" >&2
    exit 1
}
work=$(mktemp -d "${TMPDIR:-/tmp}/smtptls-build-time.XXXXXX")
trap 'rm -rf "$work"' EXIT

# cargo's defaults for [profile.release], overriding the section in Cargo.toml.
readonly DEFAULTS=(--config 'profile.release.opt-level=3' --config 'profile.release.lto=false'
    --config 'profile.release.codegen-units=16' --config 'profile.release.strip="debuginfo"')

timed() { # LABEL TARGET_DIR cargo-args...
    local label=$1 dir=$2
    shift 2
    CARGO_TARGET_DIR=$dir /usr/bin/time -f '%e %U %S' -o "$work/t" \
        cargo build --release --locked --bin smtptls "$@" 2>"$work/log" ||
        { cat "$work/log" >&2; exit 1; }
    read -r wall user sys <"$work/t"
    printf '| %s | %.0f s | %.0f s | %s |\n' "$label" "$wall" "$(awk "BEGIN { print $user + $sys }")" \
        "$(stat -c %s "$dir/release/smtptls" | awk '{ printf "%.1f MiB", $1 / 1048576 }')"
}

measure() {
    echo "Build time on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC'), $(rustc --version)"
    echo
    echo '| build | wall | CPU (user+sys) | binary |'
    echo '|---|---|---|---|'
    timed "clean, cargo's default release profile" "$work/default" "${DEFAULTS[@]}"
    timed "clean, Cargo.toml's profile: $(sed -n '/^\[profile\.release\]/,/^\[/p' Cargo.toml | grep '=' | paste -sd' ')" "$work/lto"
    touch src/lib.rs
    timed "incremental (touch src/lib.rs), default profile" "$work/default" "${DEFAULTS[@]}"
    timed "incremental (touch src/lib.rs), our profile" "$work/lto"
    echo
    echo "Load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

cargo fetch --locked >&2
measure | tee bench/build-time.md
