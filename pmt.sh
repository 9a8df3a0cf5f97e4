#!/usr/bin/env bash
# pmt.sh - set up, build and run pmt-top from a fresh Debian checkout.
#
#   ./pmt.sh demo     install what is missing, build, run the demo
#   ./pmt.sh test     install what is missing, build, run every test
#   ./pmt.sh asan     build with AddressSanitizer+UBSan and run the unit tests,
#                     then the threaded ones (ring, sampler) under ThreadSanitizer
#   ./pmt.sh build    install what is missing and build
#
# Environment: BUILD_DIR (default ./build), PMT_WERROR=1 (warnings are errors),
# PMT_SKIP_DEPS=1 (do not look for Debian packages).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${BUILD_DIR:-$here/build}
jobs=$(nproc 2>/dev/null || echo 2)

packages=(build-essential cmake pkg-config libncurses-dev libcjson-dev libpcre2-dev
          libcmocka-dev python3 python3-dev tmux gdb util-linux procps patchelf groff-base
          uwsgi-core uwsgi-plugin-python3 python3.11-dbg)

say() { printf 'pmt.sh: %s\n' "$*" >&2; }

deps() {
    [ "${PMT_SKIP_DEPS:-0}" = 1 ] && return 0
    local missing=()
    for p in "${packages[@]}"; do
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
    # The SPSC ring and the sampler thread under ThreadSanitizer.
    cmake -S "$here" -B "${build}-tsan" -DPMT_WERROR="${PMT_WERROR:-0}" -DPMT_TSAN=ON \
        -DPMT_BUILD_NATIVE=OFF >/dev/null
    cmake --build "${build}-tsan" -j "$jobs" --target test_ring test_proc_sample
    cd "${build}-tsan"
    TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -R 'unit\.test_(ring|proc_sample)$'
    ;;
build)
    deps
    configure_and_build "$build"
    ;;
*)
    echo "usage: ./pmt.sh demo | test | asan | build" >&2
    exit 2
    ;;
esac
