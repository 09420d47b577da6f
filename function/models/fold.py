"""Make this directory's models: the pinned rapidocr wheels' detectors and recognisers, folded.

    python -m function.models.fold           # rewrites every model here from the wheels' own

det.onnx and rec.onnx are PP-OCRv4 (rapidocr-onnxruntime 1.4.4, the runtime's requirement);
v6_det.onnx and v6_rec.onnx are PP-OCRv6 small (rapidocr 3.10.0, a development requirement only:
the function runs the files here, `OCR_MODEL` picks which).

The graphs as exported from Paddle spell out, op by op, what ONNX Runtime does not fuse. PP-LCNetV3
(the backbone of both) follows every convolution with a learnable scale and shift by scalars (a
Mul and an Add), writes hardswish as four ops (x * clip(x + 3, 0, 6) / 6), and scales and shifts
again after it. Each of those ops is one more pass over a whole activation tensor: in the
recogniser they took ~30 % of its time. Three exact rewrites (equal up to float rounding) remove
them:

    conv -> x*s + b                      one conv: weights * s, bias * s + b
    x*s + b -> 1x1 conv, no padding      one conv: weights * s, bias + b * sum(weights)
    x * clip(x + 3, 0, 6) / 6            x * HardSigmoid(x; 1/6, 1/2), which ORT fuses into
                                         the conv before it (HardSwish itself needs opset 14)

A scale and shift before a padded conv stays: the padding's zeros would not be shifted.

Measured: the same text on all 185 evaluation images, ~22 % less CPU per page (one thread).
PP-OCRv6 (PP-LCNetV4) has none of these patterns: its convolutions carry their own batch norm and
its activations are GELU and layer norms spelt out, which ONNX Runtime fuses itself (Gelu,
LayerNormalization). Folding leaves its ops as they are (docs/benchmarks.md, languages); it is
still made here so that every model is made, and checked, the same way.
The results are committed rather than made at start-up, where importing onnx and folding cost
~10 MiB of idle memory and ~0.5 s of cold start. The function needs only onnxruntime to run
them; this needs `onnx` (a development requirement). tests/test_models.py checks that the
files here are what this makes from the pinned wheel, and that they compute what the
originals compute.
"""

from __future__ import annotations

import collections
import importlib.util
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

HERE = Path(__file__).parent
# This directory's file -> (the package whose wheel holds the original, its file there)
MODELS = {
    "det.onnx": ("rapidocr_onnxruntime", "ch_PP-OCRv4_det_infer.onnx"),
    "rec.onnx": ("rapidocr_onnxruntime", "ch_PP-OCRv4_rec_infer.onnx"),
    "v6_det.onnx": ("rapidocr", "PP-OCRv6_det_small.onnx"),
    "v6_rec.onnx": ("rapidocr", "PP-OCRv6_rec_small.onnx"),
}


def original(name: str) -> Path:
    """rapidocr's own file for one of this directory's models (found, not imported)."""
    package, file = MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{name} is made from the {package!r} wheel: pip install it")
    return Path(spec.origin).parent / "models" / file


def fold(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with the three rewrites applied wherever they match; the input is unchanged."""
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = _Graph(folded.graph)
    graph.fold_scale_into_conv_before()
    graph.fold_scale_into_conv_after()
    graph.collapse_hardswish()
    graph.finish()
    onnx.checker.check_model(folded)
    return folded


class _Graph:
    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        # Paddle's exporter writes weights as Constant nodes; as initializers they can be read.
        nodes = []
        for node in graph.node:
            if node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
                tensor = node.attribute[0].t
                tensor.name = node.output[0]
                graph.initializer.append(tensor)
            else:
                nodes.append(node)
        self.nodes = nodes
        self.constants = {t.name: t for t in graph.initializer}
        self.dropped: set[int] = set()

    def value(self, name: str) -> np.ndarray | None:
        tensor = self.constants.get(name)
        return None if tensor is None else numpy_helper.to_array(tensor)

    def number(self, name: str) -> float | None:
        """The one-element constant `name`, if it is one."""
        value = self.value(name)
        return None if value is None or value.size != 1 else float(value.reshape(()))

    def scalar(self, node: onnx.NodeProto) -> float | None:
        """The node's constant one-element operand, if it has one."""
        return next((n for n in map(self.number, node.input) if n is not None), None)

    def variable(self, node: onnx.NodeProto) -> str:
        """The node's one operand that is not a constant."""
        (name,) = (n for n in node.input if n not in self.constants)
        return name

    def constant(self, array: np.ndarray, name: str) -> str:
        tensor = numpy_helper.from_array(array.astype(np.float32), name)
        self.graph.initializer.append(tensor)
        self.constants[name] = tensor
        return name

    def only_consumer(self, name: str, op_type: str) -> onnx.NodeProto | None:
        """The node that reads `name`, if exactly one does, it is an `op_type`, and it is live."""
        readers = [n for n in self.nodes if name in n.input and id(n) not in self.dropped]
        outputs = {o.name for o in self.graph.output}
        if len(readers) == 1 and readers[0].op_type == op_type and name not in outputs:
            return readers[0]
        return None

    def scale_shift_after(self, name: str) -> tuple[onnx.NodeProto, onnx.NodeProto] | None:
        """`name * s + b` by scalars, as a Mul then an Add that nothing else reads."""
        mul = self.only_consumer(name, "Mul")
        if mul is None or self.scalar(mul) is None:
            return None
        add = self.only_consumer(mul.output[0], "Add")
        if add is None or self.scalar(add) is None:
            return None
        return mul, add

    def weights(self, conv: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
        weights = self.value(conv.input[1])
        if weights is None:
            return None
        bias = self.value(conv.input[2]) if len(conv.input) > 2 else None
        return weights, np.zeros(weights.shape[0], np.float32) if bias is None else bias

    def fold_scale_into_conv_before(self) -> None:
        for conv in [n for n in self.nodes if n.op_type == "Conv"]:
            pair, found = self.scale_shift_after(conv.output[0]), self.weights(conv)
            if pair is None or found is None:
                continue
            (mul, add), (weights, bias) = pair, found
            scale, shift = self.scalar(mul), self.scalar(add)
            conv.input[:] = [
                conv.input[0],
                self.constant(weights * scale, f"{conv.output[0]}.folded_w"),
                self.constant(bias * scale + shift, f"{conv.output[0]}.folded_b"),
            ]
            conv.output[0] = add.output[0]
            self.dropped |= {id(mul), id(add)}

    def fold_scale_into_conv_after(self) -> None:
        for mul in [n for n in self.nodes if n.op_type == "Mul" and id(n) not in self.dropped]:
            if self.scalar(mul) is None or len(set(mul.input) - set(self.constants)) != 1:
                continue
            add = self.only_consumer(mul.output[0], "Add")
            if add is None or self.scalar(add) is None:
                continue
            conv = self.only_consumer(add.output[0], "Conv")
            found = None if conv is None else self.weights(conv)
            if conv is None or found is None or not _pointwise(conv, found[0]):
                continue
            (weights, bias), name = found, conv.output[0]
            scale, shift = self.scalar(mul), self.scalar(add)
            conv.input[:] = [
                self.variable(mul),
                self.constant(weights * scale, f"{name}.prefolded_w"),
                self.constant(bias + shift * weights.sum(axis=(1, 2, 3)), f"{name}.prefolded_b"),
            ]
            self.dropped |= {id(mul), id(add)}

    def collapse_hardswish(self) -> None:
        for add in [n for n in self.nodes if n.op_type == "Add" and id(n) not in self.dropped]:
            if self.scalar(add) != 3.0:
                continue
            x = self.variable(add)
            clip = self.only_consumer(add.output[0], "Clip")
            if clip is None or [self.number(i) for i in clip.input[1:]] != [0.0, 6.0]:
                continue
            mul = self.only_consumer(clip.output[0], "Mul")
            if mul is None or x not in mul.input:
                continue
            div = self.only_consumer(mul.output[0], "Div")
            if div is None or self.number(div.input[1]) != 6.0:
                continue
            gate = f"{div.output[0]}.gate"
            self.nodes += [
                helper.make_node("HardSigmoid", [x], [gate], alpha=1 / 6, beta=0.5),
                helper.make_node("Mul", [x, gate], [div.output[0]]),
            ]
            self.dropped |= {id(add), id(clip), id(mul), id(div)}

    def finish(self) -> None:
        """Put the live nodes back in an order ONNX accepts, and drop constants no one reads."""
        live = [n for n in self.nodes if id(n) not in self.dropped]
        ready = {i.name for i in self.graph.input} | set(self.constants) | {""}
        ordered: list[onnx.NodeProto] = []
        while live:
            runnable = [n for n in live if all(i in ready for i in n.input)]
            if not runnable:
                raise ValueError("the rewritten graph has a cycle")
            ordered += runnable
            ready |= {o for n in runnable for o in n.output}
            live = [n for n in live if all(n is not r for r in runnable)]
        self.graph.ClearField("node")
        self.graph.node.extend(ordered)
        read = {i for n in ordered for i in n.input}
        kept = [t for t in self.graph.initializer if t.name in read]
        self.graph.ClearField("initializer")
        self.graph.initializer.extend(kept)


def _pointwise(conv: onnx.NodeProto, weights: np.ndarray) -> bool:
    """A 1x1 conv, one group, no padding: a shift of its input is a shift of its output."""
    attributes = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    return (
        weights.shape[2:] == (1, 1)
        and attributes.get("group", 1) == 1
        and not any(attributes.get("pads", ()))
        and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
    )


def op_counts(model: onnx.ModelProto) -> collections.Counter[str]:
    return collections.Counter(node.op_type for node in model.graph.node)


def main() -> None:
    for name in MODELS:
        model = onnx.load(original(name))
        folded = fold(model)
        onnx.save(folded, HERE / name)
        before, after = op_counts(model), op_counts(folded)
        print(f"{name}: {sum(before.values())} -> {sum(after.values())} nodes ({dict(after)})")


if __name__ == "__main__":
    main()
