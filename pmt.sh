#!/usr/bin/env bash
# pmt.sh - set up, build and run pmt-top from a fresh Debian checkout.
#
#   ./pmt.sh demo     install what is missing, build, run the demo
#   ./pmt.sh test     install what is missing, build, run every test
#   ./pmt.sh asan     build with AddressSanitizer+UBSan and run the unit tests,
#                     then the threaded ones (ring, sampler) under ThreadSanitizer
#   ./pmt.sh build    install what is missing and build
#   ./pmt.sh fuzz [S] install clang if missing, build the libFuzzer harnesses in
#                     build-fuzz and run each for S seconds (default 10) on a
#                     copy of its corpus; fails on any crash, leak or timeout
#
# Environment: BUILD_DIR (default ./build), PMT_WERROR=1 (warnings are errors),
# PMT_SKIP_DEPS=1 (do not look for Debian packages).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${BUILD_DIR:-$here/build}
jobs=$(nproc 2>/dev/null || echo 2)

packages=(build-essential cmake pkg-config libncurses-dev libcjson-dev libpcre2-dev
          libcmocka-dev python3 python3-dev tmux gdb util-linux procps patchelf groff-base
          uwsgi-core uwsgi-plugin-python3 python3.11-dbg time gunicorn python3-lxml libjemalloc2
          python3-flask)
# ./pmt.sh fuzz builds only the parsers' libraries, with clang (and libFuzzer).
fuzz_packages=(cmake pkg-config libncurses-dev libcjson-dev libpcre2-dev clang)
fuzzers=(frame msg snapshot proc)

say() { printf 'pmt.sh: %s\n' "$*" >&2; }

# deps [PACKAGE...]: install the missing ones of PACKAGE... (default: packages).
deps() {
    [ "${PMT_SKIP_DEPS:-0}" = 1 ] && return 0
    local missing=() want=("$@")
    [ ${#want[@]} -eq 0 ] && want=("${packages[@]}")
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]}"
        say "install them with: sudo apt-get install ${missing[*]}"
        exit 1
    fi
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# libFuzzer's runtime is a separate package on Debian (recommended by clang,
# so missing where recommends are not installed): add it when a fuzzer does
# not link.
fuzz_runtime() {
    local probe='int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }'
    printf '%s\n' "$probe" | clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null && return 0
    deps "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
    if ! printf '%s\n' "$probe" | clang -x c -fsanitize=fuzzer -o /dev/null -; then
        say "clang cannot link a libFuzzer harness: install clang's runtime (libclang-rt-N-dev)"
        exit 1
    fi
}

# fuzz SECONDS: build the harnesses and run each on a copy of its corpus.
fuzz() {
    local secs=$1 fbuild=${BUILD_FUZZ_DIR:-$here/build-fuzz} work name failed=()
    case "$secs" in
    '' | *[!0-9]* | 0) say "fuzz: SECONDS must be a whole number above 0, not '$secs'"; exit 2 ;;
    esac
    cmake -S "$here" -B "$fbuild" -DCMAKE_C_COMPILER=clang -DPMT_FUZZ=ON -DBUILD_TESTING=OFF \
        -DPMT_BUILD_NATIVE=OFF -DPMT_WERROR="${PMT_WERROR:-0}" >/dev/null
    cmake --build "$fbuild" -j "$jobs" --target fuzzers
    work=$(mktemp -d "${TMPDIR:-/tmp}/pmt-fuzz.XXXXXX")
    trap "rm -rf '$work'" EXIT
    rm -rf "$fbuild/crashes"
    mkdir -p "$fbuild/crashes"
    for name in "${fuzzers[@]}"; do
        local dict=() log="$work/$name.log"
        [ -f "$here/fuzz/$name.dict" ] && dict=(-dict="$here/fuzz/$name.dict")
        cp -r "$here/fuzz/corpus/$name" "$work/$name"
        if "$fbuild/fuzz/fuzz_$name" "${dict[@]}" -max_total_time="$secs" -timeout=10 \
                -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$fbuild/crashes/$name-" \
                "$work/$name" >"$log" 2>&1; then
            say "fuzz_$name: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)"
        else
            tail -n 40 "$log" >&2
            say "fuzz_$name FAILED: the input is in $fbuild/crashes/ (rerun: $fbuild/fuzz/fuzz_$name FILE)"
            failed+=("fuzz_$name")
        fi
    done
    if [ ${#failed[@]} -gt 0 ]; then
        say "failed: ${failed[*]}"
        exit 1
    fi
}

configure_and_build() {
    local dir=$1; shift
    cmake -S "$here" -B "$dir" -DPMT_WERROR="${PMT_WERROR:-0}" "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

python314() {
    # Tests cover CPython 3.14 too; the installer explains itself when the
    # archive cannot be reached, and the 3.14 tests then say they did not run.
    if [ -x "$here/tests/tools/python314.sh" ] && [ "$(id -u)" -eq 0 ]; then
        "$here/tests/tools/python314.sh" || say "CPython 3.14 is not available: its tests will say so"
    fi
}

case "${1:-}" in
demo)
    deps
    configure_and_build "$build"
    exec "$build/pmt-top" demo "${@:2}"
    ;;
test)
    deps
    python314
    configure_and_build "$build"
    cd "$build"
    ctest --output-on-failure -j "$jobs" "${@:2}"
    ;;
asan)
    deps
    configure_and_build "${build}-asan" -DPMT_SANITIZE=ON -DPMT_BUILD_NATIVE=OFF
    cd "${build}-asan"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j "$jobs" -L unit
    # The SPSC ring, the sampler thread and the group's under ThreadSanitizer.
    cmake -S "$here" -B "${build}-tsan" -DPMT_WERROR="${PMT_WERROR:-0}" -DPMT_TSAN=ON \
        -DPMT_BUILD_NATIVE=OFF >/dev/null
    cmake --build "${build}-tsan" -j "$jobs" --target test_ring test_proc_sample test_proctree
    cd "${build}-tsan"
    TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -R 'unit\.test_(ring|proc_sample|proctree)$'
    ;;
build)
    deps
    configure_and_build "$build"
    ;;
fuzz)
    deps "${fuzz_packages[@]}"
    fuzz_runtime
    fuzz "${2:-10}"
    ;;
*)
    echo "usage: ./pmt.sh demo | test | asan | build | fuzz [SECONDS]" >&2
    exit 2
    ;;
esac
