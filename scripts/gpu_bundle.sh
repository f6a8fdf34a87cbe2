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
# The library's objects, every layer's; tests/gpu's checks and the C++ tests' objects.
find build/CMakeFiles -path '*graft_*.dir/*' -name '*.o' -not -path '*graft_nccl.dir*' | sort >"$STAGE/objects"
ar qcs "$STAGE/lib/libgraft_objects.a" $(cat "$STAGE/objects")
find build/tests/CMakeFiles/graft_tests.dir -name '*.o' | sort | xargs ar qcs "$STAGE/lib/libgraft_test_objects.a"
for dir in build/tests/CMakeFiles/graft_cuda_*.dir build/tests/CMakeFiles/graft_nccl_*.dir; do
  [ -d "$dir" ] || continue
  name="$(basename "$dir" .dir)"
  find "$dir" -name '*.o' | xargs ar qcs "$STAGE/lib/lib${name}.a"
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
