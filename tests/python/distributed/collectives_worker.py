"""Run by test_collectives.py under `mpirun -np 2`: every collective of graft.distributed, and a
graft InferenceSession running com.graft collective nodes, checked against NumPy. Each rank
builds every rank's data from the rank number, so it knows what the others sent."""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

import graft
import graft.distributed as dist

DTYPES = [np.float32, np.float64, np.int64]


def data(rank, dtype, shape=(4, 3)):
    rng = np.random.default_rng(100 + rank)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-50, 50, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def average(total, n, dtype):
    if np.issubdtype(dtype, np.integer):
        return np.trunc(total / n).astype(dtype)  # graft divides integers in C, truncating
    return (total / n).astype(dtype)


def check(name, got, want, dtype):
    assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, got.shape)
    if np.issubdtype(dtype, np.integer):
        np.testing.assert_array_equal(got, want, err_msg=name)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)


def check_python_api(rank, n):
    for dtype in DTYPES:
        xs = [data(r, dtype) for r in range(n)]
        total = np.sum(xs, axis=0).astype(dtype)
        check("all_reduce sum", dist.all_reduce(xs[rank], op="sum"), total, dtype)
        check("all_reduce average", dist.all_reduce(xs[rank]), average(total, n, dtype), dtype)
        for root in range(n):
            check(f"broadcast root {root}", dist.broadcast(xs[rank], root=root), xs[root], dtype)
        check("all_gather", dist.all_gather(xs[rank]), np.concatenate(xs), dtype)
        big = [data(r, dtype, shape=(2 * n, 5)) for r in range(n)]
        big_total = np.sum(big, axis=0).astype(dtype)
        block = slice(2 * rank, 2 * rank + 2)
        check("reduce_scatter sum", dist.reduce_scatter(big[rank]), big_total[block], dtype)
        check(
            "reduce_scatter average",
            dist.reduce_scatter(big[rank], op="average"),
            average(big_total, n, dtype)[block],
            dtype,
        )
    dist.barrier()


def model_with_collectives(n):
    f, d, i = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64
    nodes = [
        helper.make_node("AllReduce", ["x", "y", "z"], ["x_sum", "y_sum", "z_sum"],
                         domain="com.graft", reduction="sum", name="bucket0"),
        helper.make_node("AllReduce", ["x", "z"], ["x_avg", "z_avg"], domain="com.graft",
                         reduction="average", name="bucket1"),
        helper.make_node("Broadcast", ["x", "y"], ["x_root1", "y_root1"], domain="com.graft",
                         root=1, name="params"),
        helper.make_node("AllGather", ["y"], ["y_all"], domain="com.graft", name="gather"),
        helper.make_node("ReduceScatter", ["w"], ["w_part"], domain="com.graft", name="scatter"),
    ]
    value = helper.make_tensor_value_info
    inputs = [value("x", f, [4, 3]), value("y", i, [4, 3]), value("z", d, [4, 3]),
              value("w", f, [2 * n, 5])]
    outputs = [value(name, t, None) for name, t in [
        ("x_sum", f), ("y_sum", i), ("z_sum", d), ("x_avg", f), ("z_avg", d), ("x_root1", f),
        ("y_root1", i), ("y_all", i), ("w_part", f)]]
    graph = helper.make_graph(nodes, "collectives", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("com.graft", 1)])
    model.ir_version = 10
    return model


def check_session(rank, n):
    sess = graft.InferenceSession(model_with_collectives(n).SerializeToString())
    feeds = [{"x": data(r, np.float32), "y": data(r, np.int64), "z": data(r, np.float64),
              "w": data(r, np.float32, shape=(2 * n, 5))} for r in range(n)]
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, feeds[rank])))
    total = {k: np.sum([fd[k] for fd in feeds], axis=0).astype(feeds[0][k].dtype) for k in feeds[0]}
    check("x_sum", got["x_sum"], total["x"], np.float32)
    check("y_sum", got["y_sum"], total["y"], np.int64)
    check("z_sum", got["z_sum"], total["z"], np.float64)
    check("x_avg", got["x_avg"], average(total["x"], n, np.float32), np.float32)
    check("z_avg", got["z_avg"], average(total["z"], n, np.float64), np.float64)
    check("x_root1", got["x_root1"], feeds[1]["x"], np.float32)
    check("y_root1", got["y_root1"], feeds[1]["y"], np.int64)
    check("y_all", got["y_all"], np.concatenate([fd["y"] for fd in feeds]), np.int64)
    rows = 2
    check("w_part", got["w_part"], total["w"][rank * rows:(rank + 1) * rows], np.float32)


def main():
    assert dist.init() == "mpi", dist.backend()
    rank, n = dist.rank(), dist.size()
    assert n >= 2 and dist.is_distributed()
    check_python_api(rank, n)
    check_session(rank, n)
    dist.barrier()
    print(f"collectives ok on rank {rank} of {n}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
