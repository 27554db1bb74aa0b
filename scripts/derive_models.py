"""Derive the optimised model copies listed under [[derived]] in models/manifest.toml.

Usage: derive_models.py SOURCE RECIPE DEST

Each recipe keeps every weight and operator; it only changes how the graph is
declared, so that ONNX Runtime can optimise it or feed it other shapes:
- every recipe removes initializers from the graph inputs (ONNX Runtime cannot
  constant-fold an initializer that a caller could override);
- yunet: symbolic input height and width (the convolutional graph accepts any
  multiple of 32; the 2023mar file pins 640x640);
- sface, liveness: a symbolic batch dimension.
"""

import sys

import onnx
from onnx.tools import update_model_dims


def strip_initializer_inputs(model):
    initializers = {init.name for init in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(keep)


def set_dims(model, inputs, outputs):
    # Intermediate shapes recorded by the exporter would contradict the new dims.
    del model.graph.value_info[:]
    return update_model_dims.update_inputs_outputs_dims(model, inputs, outputs)


def derive(model, recipe):
    strip_initializer_inputs(model)
    if recipe == "yunet":
        outputs = {o.name: [1, "anchors", o.type.tensor_type.shape.dim[2].dim_value] for o in model.graph.output}
        return set_dims(model, {"input": [1, 3, "height", "width"]}, outputs)
    if recipe == "sface":
        return set_dims(model, {"data": ["batch", 3, 112, 112]}, {"fc1": ["batch", 128]})
    if recipe == "liveness":
        return set_dims(model, {"input": ["batch", 3, 128, 128]}, {"output": ["batch", 3]})
    raise SystemExit(f"unknown recipe {recipe!r}")


def main():
    source, recipe, dest = sys.argv[1:]
    model = derive(onnx.load(source), recipe)
    onnx.checker.check_model(model)
    onnx.save(model, dest)


if __name__ == "__main__":
    main()
