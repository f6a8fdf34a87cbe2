#!/bin/bash
# Compares Debian's oneDNN (libdnnl-dev, what graft links) with another oneDNN build on the
# convolutions graft runs (bench/onednn_conv.cc), each in its own process, alternating twice, at
# 1 and 2 threads. The other build is a prefix holding include/ and lib/, e.g. PyPI's last CPU
# (GNU OpenMP) build, unpacked from its wheels:
#   pip download --no-deps onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0 -d /tmp/w
#   for w in /tmp/w/*.whl; do unzip -qo "$w" -d /tmp/onednn; done
#   bash bench/onednn_versions.sh /tmp/onednn/onednn_cpu_gomp-2023.2.0.data/data \
#       /tmp/onednn/onednn_devel_cpu_gomp-2023.2.0.data/data
# (the second argument: where include/ is, when the library and headers are apart).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
other_lib=$1/lib
other_include=${2:-$1}/include
out=$(mktemp -d)
g++ -O2 -std=c++17 "$here/onednn_conv.cc" -o "$out/debian" -ldnnl -fopenmp
g++ -O2 -std=c++17 -I"$other_include" "$here/onednn_conv.cc" -o "$out/other" \
    -L"$other_lib" -l:libdnnl.so.3 -Wl,-rpath,"$other_lib" -fopenmp
for threads in 1 2; do
  for round in 1 2; do
    for build in debian other; do
      OMP_NUM_THREADS=$threads GOMP_SPINCOUNT=3000 "$out/$build" | sed "s/^/[$build r$round] /"
    done
  done
done | tee "$out/raw.txt"
# Per convolution and thread count: the median over rounds of each build, and their ratio.
python3 - "$out/raw.txt" <<'PY'
import collections, re, statistics, sys
times, versions, threads = collections.defaultdict(list), {}, None
for line in open(sys.argv[1]):
    head = re.match(r"\[(\w+) r\d\] oneDNN ([\d.]+), (\d+) OpenMP", line)
    if head:
        versions[head.group(1)], threads = head.group(2), int(head.group(3))
        continue
    row = re.match(r"\[(\w+) r\d\] (\w+)\s+(.+?)\s+([\d.]+) us", line)
    if row:
        times[(threads, row.group(2), row.group(3), row.group(1))].append(float(row.group(4)))
a, b = versions["debian"], versions["other"]
print(f"\n{'thr':>3} {'type':5} {'convolution':28} {a + ' us':>10} {b + ' us':>10} {'ratio':>6}")
ratios = collections.defaultdict(list)
for t, kind, name in sorted({k[:3] for k in times}):
    x = statistics.median(times[(t, kind, name, "debian")])
    y = statistics.median(times[(t, kind, name, "other")])
    ratios[(t, kind)].append(y / x)
    print(f"{t:>3} {kind:5} {name:28} {x:10.1f} {y:10.1f} {y / x:6.2f}")
for (t, kind), r in sorted(ratios.items()):
    print(f"{kind} at {t} thread(s): oneDNN {b} / {a} geomean {statistics.geometric_mean(r):.3f}")
PY
rm -rf "$out"
