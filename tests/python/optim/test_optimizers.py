"""Optimizer steps built by graft.optim match torch.optim over 20 steps of a small regression."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import graft
import graft.autodiff
import graft.optim


def _regression_model(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1),
             helper.make_node("Sub", ["y", "target"], ["err"]),
             helper.make_node("Mul", ["err", "err"], ["sq"]),
             helper.make_node("ReduceMean", ["sq"], ["loss"], keepdims=0)]
    graph = helper.make_graph(nodes, "regression",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 5]),
                               helper.make_tensor_value_info("target", TensorProto.FLOAT, [8, 3])],
                              [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


CONFIGS = {
    "sgd": (dict(kind="sgd"), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd_momentum_wd": (dict(kind="sgd", momentum=0.9, weight_decay=0.01),
                        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01)),
    "sgd_nesterov": (dict(kind="sgd", momentum=0.8, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    "adam": (dict(kind="adam"), lambda p: torch.optim.Adam(p, lr=0.01)),
    "adam_l2": (dict(kind="adam", weight_decay=0.1, betas=(0.8, 0.99)),
                lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1, betas=(0.8, 0.99))),
    "adamw": (dict(kind="adamw"), lambda p: torch.optim.AdamW(p, lr=0.01)),
    "adamw_wd": (dict(kind="adamw", weight_decay=0.3, eps=1e-6), lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.3, eps=1e-6)),
    "adagrad": (dict(kind="adagrad"), lambda p: torch.optim.Adagrad(p, lr=0.1)),
    "adagrad_decay_wd": (dict(kind="adagrad", lr_decay=0.05, weight_decay=0.1),
                         lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.1)),
    "rmsprop": (dict(kind="rmsprop"), lambda p: torch.optim.RMSprop(p, lr=0.01)),
    "rmsprop_centered_momentum": (dict(kind="rmsprop", centered=True, momentum=0.9, alpha=0.9, weight_decay=0.01),
                                  lambda p: torch.optim.RMSprop(p, lr=0.005, centered=True, momentum=0.9, alpha=0.9,
                                                                weight_decay=0.01)),
}


CLIPPED = {"sgd_clipped": (dict(kind="sgd", momentum=0.9, max_grad_norm=0.5),
                           lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
           "adam_clipped": (dict(kind="adam", max_grad_norm=0.3), lambda p: torch.optim.Adam(p, lr=0.01))}


@pytest.mark.parametrize("name", list(CONFIGS) + list(CLIPPED))
def test_matches_torch_optim(name):
    ours_cfg, make_torch = {**CONFIGS, **CLIPPED}[name]
    max_norm = ours_cfg.get("max_grad_norm", 0.0)
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 5)).astype(np.float32)
    b0 = rng.standard_normal(3).astype(np.float32)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    target = rng.standard_normal((8, 3)).astype(np.float32)
    lr = make_torch([torch.zeros(1, requires_grad=True)]).defaults["lr"]

    step_model = graft.optim.add_optimizer(graft.autodiff.gradient_model(_regression_model(w0, b0), loss="loss"),
                                           ["w", "b"], **ours_cfg)
    onnx.checker.check_model(step_model, full_check=True)
    sess = graft.InferenceSession(step_model.SerializeToString())
    out_names = [o.name for o in step_model.graph.output]
    state_names = [n for n in out_names if n.endswith(".new") and n.count(".") > 2]
    feeds = {"x": x, "target": target, "graft.lr": np.array(lr, np.float32), "graft.step": np.array(0, np.int64),
             "w": w0, "b": b0}

    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    opt = make_torch([tw, tb])
    worst = 0.0
    for step in range(20):
        outs = dict(zip(out_names, sess.run(None, feeds)))
        opt.zero_grad()
        loss = ((torch.tensor(x) @ tw.T + tb - torch.tensor(target)) ** 2).mean()
        loss.backward()
        if max_norm:
            torch.nn.utils.clip_grad_norm_([tw, tb], max_norm)
        opt.step()
        assert abs(float(outs["loss"]) - float(loss)) <= 1e-5 * max(1.0, abs(float(loss))), f"step {step} loss"
        for p, t in (("w", tw), ("b", tb)):
            rel = np.abs(outs[f"{p}.new"] - t.detach().numpy()).max() / np.abs(t.detach().numpy()).max()
            worst = max(worst, rel)
            assert rel < 1e-5, f"{name} step {step}: {p} differs from torch.optim by {rel:.2e} (relative)"
        # The step's outputs are the next step's inputs.
        feeds["w"], feeds["b"] = outs["w.new"], outs["b.new"]
        feeds["graft.step"] = outs["graft.step.new"]
        for s in state_names:
            feeds[s[: -len(".new")]] = outs[s]
    # The step model is plain ONNX: onnxruntime computes the same step.
    import onnxruntime as ort

    theirs = ort.InferenceSession(step_model.SerializeToString(), providers=["CPUExecutionProvider"])
    for got, want in zip(theirs.run(None, feeds), sess.run(None, feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    print(f"{name}: 20 steps, worst relative difference from torch.optim {worst:.2e}")


def _lamb_reference(p, g, m, v, t, lr, b1, b2, eps, wd):
    """LAMB as You et al. (2019) state it, in float64."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    r = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps) + wd * p
    pn, rn = np.linalg.norm(p), np.linalg.norm(r)
    trust = pn / rn if pn > 0 and rn > 0 else 1.0
    return p - lr * trust * r, m, v


def test_lamb_matches_reference():
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal((3, 5)).astype(np.float32)
    b0 = rng.standard_normal(3).astype(np.float32)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    target = rng.standard_normal((8, 3)).astype(np.float32)
    step_model = graft.optim.add_optimizer(graft.autodiff.gradient_model(_regression_model(w0, b0), loss="loss"),
                                           ["w", "b"], kind="lamb", weight_decay=0.01, eps=1e-6)
    sess = graft.InferenceSession(step_model.SerializeToString())
    names = [o.name for o in step_model.graph.output]
    feeds = {"x": x, "target": target, "graft.lr": np.array(0.01, np.float32), "graft.step": np.array(0, np.int64),
             "w": w0, "b": b0}
    ref = {"w": w0.astype(np.float64), "b": b0.astype(np.float64)}
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in ref.items()}
    for step in range(1, 21):
        outs = dict(zip(names, sess.run(None, feeds)))
        for k in ("w", "b"):
            g = outs[f"{k}_grad"].astype(np.float64)  # the gradients at the current weights
            ref[k], m, v = _lamb_reference(feeds[k].astype(np.float64), g, *moments[k], step, 0.01, 0.9, 0.999,
                                           1e-6, 0.01)
            moments[k] = (m, v)
            np.testing.assert_allclose(outs[f"{k}.new"], ref[k], rtol=1e-5, atol=1e-6, err_msg=f"step {step} {k}")
            feeds[k] = outs[f"{k}.new"]
            for slot, value in zip(("m", "v"), moments[k]):
                feeds[f"{k}.lamb.{slot}"] = outs[f"{k}.lamb.{slot}.new"]
                moments[k] = tuple(outs[f"{k}.lamb.{s}.new"].astype(np.float64) for s in ("m", "v"))
        feeds["graft.step"] = outs["graft.step.new"]
