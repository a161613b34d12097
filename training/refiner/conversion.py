"""A refiner that serving runs (LiteRT, in a package) back into Keras, to fine-tune it."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import keras
import numpy as np
from certcorners.preprocessing import unit_range
from keras import layers

from training.fit import check_same_widths, convolution_widths
from training.packages import training_file, verified_package
from training.refiner.network import RefinerConfig, build_refiner

# The refiner as Keras, shipped beside the flatbuffer serving runs (training.export): what a
# later run fine-tunes (train-refiner --init-from <package>). Packages exported before
# 2026-12-02 ship none, nor do packages that reuse such a refiner (the committed
# reference-20261202h, with reference-20261122e's); their refiner is rebuilt from the flatbuffer
# (refiner_from_litert).
REFINER_KERAS_FILE = "refiner.keras"

def refiner_from_litert(path: str | Path, crops: np.ndarray,
                        config: RefinerConfig | None = None) -> keras.Model:
    """The Keras refiner whose inference answers are those of an exported `path`
    (refiner.tflite): how a package, which ships its refiner as LiteRT only, is fine-tuned.

    The export folded each batch norm into its convolution (kernel and bias). Unfolded with
    the statistics of the convolutions' outputs on `crops` (uint8, as load_crops cuts them),
    the model answers as the flatbuffer does in inference and normalises a training batch of
    such crops about as it was normalised in training, so fine-tuning starts where the
    flatbuffer is."""
    from ai_edge_litert.interpreter import Interpreter

    model = build_refiner(config)
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    ops_by_kind: dict[str, list] = {}
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the op graph, read only
        ops_by_kind.setdefault(op["op_name"], []).append(op)
    convolutions = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    denses = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    lite_convolutions = ops_by_kind.get("CONV_2D", [])
    lite_denses = ops_by_kind.get("FULLY_CONNECTED", [])
    if len(lite_convolutions) != len(convolutions) or len(lite_denses) != len(denses):
        raise ValueError(f"{path} is not a refiner of this architecture: "
                         f"{len(lite_convolutions)} convolutions and {len(lite_denses)} dense "
                         f"layers, not {len(convolutions)} and {len(denses)}")

    def constant(index: int) -> np.ndarray:
        return np.asarray(interpreter.get_tensor(index), np.float32)

    biases = {}
    for layer, op in zip(convolutions, lite_convolutions, strict=True):
        kernel = constant(op["inputs"][1]).transpose(1, 2, 3, 0)  # OHWI -> HWIO
        if kernel.shape != tuple(layer.kernel.shape):
            raise ValueError(f"{path}: {layer.name} is {kernel.shape}, not "
                             f"{tuple(layer.kernel.shape)}")
        layer.set_weights([kernel])
        biases[layer.name] = constant(op["inputs"][2])
    for layer, op in zip(denses, lite_denses, strict=True):
        kernel = constant(op["inputs"][1]).T  # (out, in) -> (in, out)
        if kernel.shape != tuple(layer.kernel.shape):
            raise ValueError(f"{path}: {layer.name} is {kernel.shape}, not "
                             f"{tuple(layer.kernel.shape)}")
        layer.set_weights([kernel, constant(op["inputs"][2])])
    # First the identity batch norm (output = convolution + folded bias), then, from the
    # convolutions' outputs that gives, the statistics that keep it so.
    norms = {layer.name: model.get_layer("bn" + layer.name[4:]) for layer in convolutions}
    for name, norm in norms.items():
        ones = np.ones_like(biases[name])
        norm.set_weights([ones, biases[name], 0 * ones, ones - norm.epsilon])
    probe = keras.Model(model.inputs, [layer.output for layer in convolutions])
    outputs = probe.predict(unit_range(crops), batch_size=64, verbose=0)
    for (name, norm), output in zip(norms.items(), outputs, strict=True):
        mean = output.mean(axis=(0, 1, 2))
        variance = output.var(axis=(0, 1, 2))
        norm.set_weights([np.sqrt(variance + norm.epsilon), mean + biases[name], mean,
                          variance])
    return model


def package_design(card: dict) -> RefinerConfig:
    """The design of a package's refiner, as its card records it; pooled, with the default
    widths, for cards that record none (packages before the designs were named)."""
    model = card.get("refiner_training", {}).get("model") or {}
    known = {f.name for f in fields(RefinerConfig)}
    return RefinerConfig(**{key: tuple(value) if key == "filters" else value
                            for key, value in model.items() if key in known})


def initial_refiner(init_from: str | Path, config: RefinerConfig, crops: np.ndarray
                    ) -> keras.Model:
    """The refiner a run starts from: a .keras refiner, or the refiner of an exported package
    (model.tar.gz, its files verified as serving verifies them), in `config`'s architecture.
    A pooled refiner's weights load into a strided one; not the other way round."""
    init_from = Path(init_from)
    if init_from.name.endswith(".tar.gz"):
        with verified_package(init_from) as (card, folder):
            if "refiner_model" not in card:
                raise ValueError(f"{init_from} has no refiner")
            keras_path = training_file(init_from, card, folder, REFINER_KERAS_FILE)
            source = (keras.saving.load_model(keras_path, compile=False)
                      if keras_path is not None else refiner_from_litert(
                          folder / card["refiner_model"], crops, package_design(card)))
    else:
        source = keras.saving.load_model(init_from, compile=False)
    source_strided = sum(1 for layer in source.layers if isinstance(layer, layers.Conv2D)
                         and layer.name != "conv0" and tuple(layer.strides) == (2, 2))
    if source_strided > config.strided_blocks:
        raise ValueError(f"{init_from} strides {source_strided} blocks: train it with "
                         f"--strided-blocks {source_strided} (its weights in a pooled refiner "
                         f"would run where they never learnt to)")
    model = build_refiner(config)
    check_same_widths(source, convolution_widths(model), init_from)
    model.set_weights(source.get_weights())
    return model
