"""Corrupted models never crash the process: each either loads and runs or raises.

A child process loads 2000 seeded corruptions of a small CNN (byte flips, truncations,
attribute and shape edits) and runs those that load; the test fails if the child dies.
"""

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = textwrap.dedent("""
    import random, sys
    import numpy as np
    import onnx
    sys.path.insert(0, sys.argv[1])
    import graft
    from demo import build_cnn

    base = build_cnn()
    data = base.SerializeToString()
    x = np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32)
    outcomes = {"ran": 0, "raised": 0}

    def attempt(blob, seed):
        print(seed, flush=True)
        try:
            sess = graft.InferenceSession(blob)
            sess.run(None, {"image": x})
            outcomes["ran"] += 1
        except (graft.InvalidArgument, graft.NotImplemented, graft.Fail, ValueError, RuntimeError):
            outcomes["raised"] += 1

    for seed in range(int(sys.argv[2])):
        rng = random.Random(seed)
        kind = seed % 3
        if kind == 0:  # flip bytes
            blob = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                blob[rng.randrange(len(blob))] = rng.randrange(256)
            attempt(bytes(blob), seed)
        elif kind == 1:  # truncate
            attempt(data[: rng.randrange(len(data))], seed)
        else:  # structurally valid protobuf, semantically broken
            m = onnx.ModelProto()
            m.CopyFrom(base)
            node = m.graph.node[rng.randrange(len(m.graph.node))]
            choice = rng.randrange(4)
            if choice == 0 and node.attribute:
                a = node.attribute[rng.randrange(len(node.attribute))]
                if a.ints:
                    a.ints[rng.randrange(len(a.ints))] = rng.choice([-5, 0, 1000])
                else:
                    a.i = rng.choice([-5, 0, 1000])
            elif choice == 1 and node.input:
                node.input[rng.randrange(len(node.input))] = rng.choice(["", "image", "conv1.w", "fc.b"])
            elif choice == 2:
                init = m.graph.initializer[rng.randrange(len(m.graph.initializer))]
                init.dims[rng.randrange(len(init.dims))] = rng.choice([0, 1, 3, 100])
            else:
                node.op_type = rng.choice(["Conv", "MaxPool", "Gemm", "Softmax", "Relu", "Flatten"])
            attempt(m.SerializeToString(), seed)
    print("outcomes", outcomes)
""")


def test_corrupted_models_do_not_crash():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "python"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, os.path.join(ROOT, "examples"), "2000"],
                          capture_output=True, text=True, env=env, timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, f"process died (code {proc.returncode}) on corruption seed {lines[-1] if lines else '?'}: {proc.stderr[-2000:]}"
    print(lines[-1])
    assert lines[-1].startswith("outcomes")
