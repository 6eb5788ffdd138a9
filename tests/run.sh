#!/usr/bin/env bash
# The project's test command: installs the Debian packages the build and the
# tests need (only those missing), builds pgpulse with -Werror and runs every
# test with ctest.
#
#   tests/run.sh                 build/ , then ctest
#   tests/run.sh --sanitize      build-asan/ with ASan+UBSan, then ctest
#   tests/run.sh [...] -- ARGS   ARGS go to ctest (e.g. -- -R integration.test_cli)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sanitize=OFF
builddir=$root/build
ctest_args=()
while (($#)); do
    case $1 in
    --sanitize) sanitize=ON builddir=$root/build-asan ;;
    --) shift; ctest_args=("$@"); break ;;
    -h | --help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "tests/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

"$root/deploy/deps.sh" build server test package browser

if [[ $sanitize == ON ]]; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

cmake -S "$root" -B "$builddir" -DPGPULSE_WERROR=ON -DPGPULSE_SANITIZE=$sanitize
cmake --build "$builddir" -j "$(nproc)"
cd "$builddir"
ctest --output-on-failure "${ctest_args[@]}"
