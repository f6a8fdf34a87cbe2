#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a GPU machine that has the CUDA toolkit, Python and
# PyTorch but none of graft's other build dependencies: graft's compiled objects (the library's,
# and the C++ tests'), the static ONNX and GoogleTest libraries, protobuf's headers and library,
# and the shared libraries graft links from Debian (oneDNN, Open MPI and theirs). gpu_check.sh
# links the C++ tests and the Python extension there, against that machine's Python.
# Output: .gpu/bundle.tar.xz (git ignores .gpu/; name it in the device run's carry list).
# Expects the environment printed by scripts/setup.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/build.sh graft_tests >/dev/null
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/lib" "$STAGE/include" .gpu
# The objects the build links into the C++ tests (read from its link command, so objects of
# sources that no longer exist are left out): the library's, every layer, and the tests' own.
LINK_LINE="$(ninja -C build -t commands graft_tests | tail -n 1)"
tr ' ' '\n' <<<"$LINK_LINE" | grep '\.o$' | grep -v '^tests/' | sed 's|^|build/|' >"$STAGE/objects"
tr ' ' '\n' <<<"$LINK_LINE" | grep '\.o$' | grep '^tests/' | sed 's|^|build/|' >"$STAGE/test_objects"
ar qcs "$STAGE/lib/libgraft_objects.a" $(cat "$STAGE/objects")
ar qcs "$STAGE/lib/libgraft_test_objects.a" $(cat "$STAGE/test_objects")
# tests/gpu's device checks: their own objects, by the same reading of their link commands.
for target in $(ninja -C build -t targets all | grep -o '^tests/graft_\(cuda\|nccl\)_[a-z_]*' | sort -u); do
  name="$(basename "$target")"
  [ "$name" = graft_nccl_collectives ] && continue  # links libgraft_nccl, not the library
  bash scripts/build.sh "$target" >/dev/null
  ninja -C build -t commands "$target" | tail -n 1 | tr ' ' '\n' | grep '\.o$' | grep '^tests/' |
    grep -v 'graft_tests.dir' | sed 's|^|build/|' | xargs ar qcs "$STAGE/lib/lib${name}.a"
done
cp build/libgraft_nccl.so "$STAGE/lib/"
cp "$ONNX_ROOT"/lib/libonnx.a "$ONNX_ROOT"/lib/libonnx_proto.a "$STAGE/lib/"
cp -r "$ONNX_ROOT/include/onnx" "$STAGE/include/"
cp -r /usr/include/google "$STAGE/include/"
cp /usr/lib/x86_64-linux-gnu/libgtest.a /usr/lib/x86_64-linux-gnu/libgtest_main.a "$STAGE/lib/"
# Shared libraries from Debian that the GPU machine lacks, with the versioned names the linker
# records. CUDA's own (cudart, cuBLASLt, cuDNN, NCCL) come from that machine.
for lib in libdnnl.so.2 libprotobuf.so.32 libmpi.so.40 libopen-rte.so.40 libopen-pal.so.40 \
  libhwloc.so.15 libevent_core-2.1.so.7 libevent_pthreads-2.1.so.7 libudev.so.1 libOpenCL.so.1; do
  cp -L "/usr/lib/x86_64-linux-gnu/$lib" "$STAGE/lib/" 2>/dev/null || cp -L "/lib/x86_64-linux-gnu/$lib" "$STAGE/lib/"
done
cp -L /usr/lib/x86_64-linux-gnu/openmpi/lib/libmpi.so.40 "$STAGE/lib/" 2>/dev/null || true
for lib in libdnnl libprotobuf libmpi; do
  ln -sf "$(cd "$STAGE/lib" && ls $lib.so.* | head -1)" "$STAGE/lib/$lib.so"
done
tar -C "$STAGE" -cf - lib include | xz -T2 -6 >.gpu/bundle.tar.xz
echo "gpu_bundle: .gpu/bundle.tar.xz, $(du -h .gpu/bundle.tar.xz | cut -f1)"
