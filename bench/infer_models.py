"""The models and inputs of the inference benchmark (bench/infer_bench.py), built here from code
with fixed seeds and random weights (nothing is downloaded) and cached as ONNX files in
$GRAFT_CACHE/bench-models (default ~/.cache/graft/bench-models); a missing file is rebuilt.

    PYTHONPATH=python python bench/infer_models.py [--models resnet50,bert_int8]   (builds them)

Every model has a dynamic batch axis, so batch 1 and batch 8 run the same file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# onnxruntime 1.31, OpenVINO 2026.4 and graft all read IR 10 to 13; the exporters write 10.
IR_VERSION = 10
OPSET = 18
BERT_SEQUENCE = 128
MODELS = ("resnet50", "mobilenetv2", "bert", "mlp", "resnet50_int8", "bert_int8")
# The float model each quantized model is made from.
QUANTIZED_FROM = {"resnet50_int8": "resnet50", "bert_int8": "bert"}


def cache_folder() -> str:
    root = os.environ.get("GRAFT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "graft")
    return os.path.join(root, "bench-models")


def inputs(name: str, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The fixed input of `batch` samples that every engine runs for model `name`."""
    rng = np.random.default_rng(seed)
    base = name.removesuffix("_int8")
    if base in ("resnet50", "mobilenetv2"):
        return {"input": rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)}
    if base == "mlp":
        return {"x": rng.standard_normal((batch, 784), dtype=np.float32)}
    if base == "bert":
        ids = rng.integers(0, 30522, (batch, BERT_SEQUENCE)).astype(np.int64)
        mask = np.ones((batch, BERT_SEQUENCE), np.int64)
        mask[:, BERT_SEQUENCE * 3 // 4:] = 0  # a padded tail, so the mask matters
        segments = np.zeros((batch, BERT_SEQUENCE), np.int64)
        segments[:, BERT_SEQUENCE // 2:] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": segments}
    raise ValueError(f"unknown model {name}; known: {', '.join(MODELS)}")


def model_path(name: str, folder: str | None = None, log=print) -> str:
    """The cached ONNX file of model `name`, built first if missing (quantized models build their
    float model first). Files are written under a temporary name and renamed, so an interrupted
    build never leaves a truncated model behind."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name}; known: {', '.join(MODELS)}")
    folder = folder or cache_folder()
    path = os.path.join(folder, f"{name}.onnx")
    if os.path.exists(path):
        return path
    os.makedirs(folder, exist_ok=True)
    source = model_path(QUANTIZED_FROM[name], folder, log) if name in QUANTIZED_FROM else None
    log(f"building {name} into {path} ...")
    start = time.perf_counter()
    partial = path + f".{os.getpid()}.partial"
    try:
        BUILDERS[name](partial, source)
        _cap_ir_version(partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    log(f"built {name} in {time.perf_counter() - start:.0f} s")
    return path


def _cap_ir_version(path: str) -> None:
    import onnx

    m = onnx.load(path)
    if m.ir_version > IR_VERSION:
        m.ir_version = IR_VERSION
        onnx.save(m, path)


def _randomize_batchnorm(model, seed: int) -> None:
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))
    from torch_models import randomize_batchnorm

    randomize_batchnorm(model, seed)


def _export(model, args: tuple, kwargs: dict, path: str, input_names: list[str], output_names: list[str]) -> None:
    """torch.onnx.export with the dynamo exporter at opset 18 and a dynamic batch axis on every
    input; if the dynamo exporter fails, says so and falls back to the TorchScript exporter."""
    import torch

    model.eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    # Positional inputs take their dynamic axes as a tuple, keyword inputs by name.
    shapes = tuple({0: batch} for _ in args) if args else {n: {0: batch} for n in kwargs}
    try:
        torch.onnx.export(model, args, path, kwargs=kwargs, input_names=input_names, output_names=output_names,
                          dynamic_shapes=shapes, dynamo=True, opset_version=OPSET, external_data=False,
                          verbose=False)
    except Exception as e:  # noqa: BLE001  (any exporter failure falls back, with the reason)
        reason = " ".join(str(e).split())[:400]
        print(f"the dynamo exporter failed ({type(e).__name__}: {reason}); falling back to the TorchScript "
              "exporter", file=sys.stderr)
        axes = {n: {0: "batch"} for n in input_names + output_names}
        flat = args + tuple(kwargs[n] for n in input_names[len(args):])
        torch.onnx.export(model, flat, path, input_names=input_names, output_names=output_names,
                          dynamic_axes=axes, dynamo=False, opset_version=OPSET)


@contextlib.contextmanager
def _keeping_batchnorm():
    """The exporter's graph optimizer (onnxscript) folds BatchNormalization into the convolutions;
    within this context it leaves them, so the engines' own folding is exercised (and timed at
    session creation). The rule list is onnxscript's private table: if it moves, models come out
    folded, which the build log says."""
    try:
        from onnxscript import rewriter

        rules = rewriter._DEFAULT_REWRITE_RULES
    except (ImportError, AttributeError):
        print("onnxscript's rewrite rules not found: BatchNormalization comes out folded", file=sys.stderr)
        yield
        return
    rewriter._DEFAULT_REWRITE_RULES = tuple(r for r in rules if not str(r).startswith("FuseBatchNorm"))
    try:
        yield
    finally:
        rewriter._DEFAULT_REWRITE_RULES = rules


def _build_vision(name: str, path: str) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet50() if name == "resnet50" else torchvision.models.mobilenet_v2()
    # Non-trivial running statistics, so folding BatchNorm into the convolutions is exercised.
    _randomize_batchnorm(model, seed=1)
    x = torch.from_numpy(inputs(name, 2)["input"])
    with _keeping_batchnorm():
        _export(model, (x,), {}, path, ["input"], ["logits"])


def _build_bert(path: str) -> None:
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig()).eval()
    feeds = {k: torch.from_numpy(v) for k, v in inputs("bert", 2).items()}
    _export(model, (), feeds, path, list(feeds), ["last_hidden_state", "pooler_output"])


def _build_mlp(path: str) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    sizes = [784, 1024, 1024, 10]
    nodes, weights, x = [], [], "x"
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        w = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (rng.standard_normal(fan_out) * 0.1).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(sizes) - 2
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"mm{i}"]),
                  helper.make_node("Add", [f"mm{i}", f"b{i}"], ["y" if last else f"add{i}"])]
        if not last:
            nodes.append(helper.make_node("Relu", [f"add{i}"], [f"h{i}"]))
            x = f"h{i}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 784])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _build_resnet50_int8(path: str, source: str) -> None:
    """Static int8 quantization in QDQ form (uint8 activations, per-channel int8 weights),
    calibrated on a few random images, after onnxruntime's pre-processing (which folds
    BatchNormalization, as quantization expects)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class RandomImages(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([inputs("resnet50", 1, seed=100 + i) for i in range(8)])

        def get_next(self):
            return next(self.batches, None)

    prepared = path + ".prepared.onnx"
    quant_pre_process(source, prepared)
    try:
        quantize_static(prepared, path, RandomImages(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        os.remove(prepared)


def _build_bert_int8(path: str, source: str) -> None:
    """Dynamic int8 quantization: int8 weights, activations quantized at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, path, weight_type=QuantType.QInt8)


BUILDERS = {
    "resnet50": lambda path, _: _build_vision("resnet50", path),
    "mobilenetv2": lambda path, _: _build_vision("mobilenetv2", path),
    "bert": lambda path, _: _build_bert(path),
    "mlp": lambda path, _: _build_mlp(path),
    "resnet50_int8": _build_resnet50_int8,
    "bert_int8": _build_bert_int8,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--folder", default=None, help="default: " + cache_folder())
    args = parser.parse_args()
    for name in args.models.split(","):
        print(model_path(name, args.folder))


if __name__ == "__main__":
    main()
