#!/usr/bin/env bash
# Installs the build into a temporary prefix (cmake --install) and compiles every installed
# header alone, as the first include of a translation unit, against the installed tree only:
# a header that needs another one that is not installed, or that leans on an include its user
# happened to make first, fails here.
# Usage: headers_compile_alone.sh BUILD_DIR CXX_COMPILER
set -euo pipefail
build="$1"
cxx="$2"
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
include="$prefix/include/graft"
mapfile -t headers < <(cd "$include" && find . -name '*.h' | sed 's|^\./||' | sort)
if [ "${#headers[@]}" -eq 0 ]; then
  echo "no headers installed under $include"
  exit 1
fi
compile() {
  echo "#include \"$1\"" | "$cxx" -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I"$include" -x c++ - \
    || { echo "FAILED: $1"; return 1; }
}
export -f compile
export cxx include
printf '%s\n' "${headers[@]}" | xargs -P "$(nproc)" -I{} bash -c 'compile "$1"' _ {} >"$prefix/log" 2>&1 \
  || { cat "$prefix/log"; echo "installed headers that do not compile alone: $(grep -c '^FAILED' "$prefix/log")"; exit 1; }
echo "${#headers[@]} installed headers each compile alone"
