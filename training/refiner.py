"""Stage 2, the refiner: a small CNN on the number's crop (certcorners.refine) that answers the
four corners in crop pixels, whether the crop is upside down, and whether a registration
number is there at all.

It trains on crops cut from generated photos (through the serving decode and cut) around
guesses made by perturbing the true quad with errors wider than stage 1's, and on crops
without a number: scenes without a card, covered numbers, and other print on the card.
Written in backend-agnostic Keras 3 (keras.ops), so it trains under JAX or PyTorch too.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
from certcorners import refine
from certcorners.model_card import sha256_file
from certcorners.predictor import Predictor, px_per_400
from certcorners.preprocessing import Decoded, decode, unit_range
from keras import layers, ops

from training.dataset import Example, cached_arrays, read_examples
from training.evaluate import load_predictor
from training.packages import verified_package
from training.train import Batches, RunConfig, fit_callbacks

CROPS_FILE = "refiner-crops.npz"
# The refiner as Keras, shipped beside the flatbuffer serving runs (training.export): what a
# later run fine-tunes (train-refiner --init-from <package>). Packages exported before
# 2026-12-02 ship none, nor do packages that reuse such a refiner (the committed
# reference-20261202h, with reference-20261122e's); their refiner is rebuilt from the flatbuffer
# (refiner_from_litert).
REFINER_KERAS_FILE = "refiner.keras"
# Bumped when the way crops are cut changes without a CropConfig field changing, so that
# cached crops are rebuilt. 2: guesses serving would not refine, or whose truth lies more
# than a crop's width away, are drawn again.
CROPS_VERSION = 2
# Corner error weighs in crop pixels; the two yes/no answers in binary cross-entropy.
CORNER_WEIGHT, FLIP_WEIGHT, PRESENCE_WEIGHT = 0.1, 1.0, 1.0


@dataclass(frozen=True)
class GuessErrors:
    """How far the guesses that crops are cut around stray from the truth, in pixels at the
    spec's 400-px scale: wider than stage 1's measured errors (model card), so the refiner has
    seen worse than it will meet."""

    shift: float = 4.0  # sigma of the whole quad's shift
    wide_shift: float = 9.0  # ... for one guess in four
    corner: float = 1.5  # sigma of each corner's own error
    scale: float = 0.08  # sigma of the log of the quad's size
    rotation_degrees: float = 3.0
    upside_down: float = 0.25  # share of guesses named 180 degrees wrong

    def __post_init__(self):
        if min(self.shift, self.wide_shift, self.corner, self.scale,
               self.rotation_degrees) < 0 or not 0 <= self.upside_down <= 1:
            raise ValueError("guess errors must be >= 0 and upside_down a share in [0, 1]")

    def perturb(self, rng: np.random.Generator, quad: np.ndarray, px: float,
                fine: bool = False) -> np.ndarray:
        """A guess around `quad` (4, 2); `px` photo pixels per 400-scale pixel. `fine`: the
        small errors a first refiner pass leaves, which the second pass starts from."""
        shrink = 0.25 if fine else 1.0
        centre = quad.mean(axis=0)
        angle = np.radians(rng.normal(0, self.rotation_degrees * shrink))
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        scale = np.exp(rng.normal(0, self.scale * shrink))
        sigma = self.wide_shift if rng.random() < 0.25 else self.shift
        guess = (quad - centre) @ rotation.T * scale + centre + rng.normal(0, sigma * px * shrink,
                                                                           2)
        guess = guess + rng.normal(0, self.corner * px * shrink, (4, 2))
        return np.roll(guess, 2, axis=0) if rng.random() < self.upside_down else guess


@dataclass(frozen=True)
class CropConfig:
    copies: int = 6  # guesses per photo with a number
    negatives_per_photo: int = 3  # crops per photo without one
    seed: int = 0
    errors: GuessErrors = field(default_factory=GuessErrors)
    # Share of the wide guesses cut as serving cuts its first crop: around the rectangle
    # refine.first_guess makes of stage 1's quad, not around the quad itself.
    rectangles: float = 0.0
    # Crops more per photo without a certificate, where the cascade of the package
    # `hard_negatives_from` is surest of a number (hard_negative_quads): the print serving's
    # search and scan could take for one. Random quads seldom land on it.
    hard_negatives: int = 0
    hard_negatives_from: str = ""

    def __post_init__(self):
        if self.copies < 1 or self.negatives_per_photo < 0:
            raise ValueError("copies must be >= 1 and negatives_per_photo >= 0")
        if not 0 <= self.rectangles <= 1:
            raise ValueError(f"rectangles must be a share in [0, 1], got {self.rectangles}")
        if self.hard_negatives < 0:
            raise ValueError(f"hard_negatives must be >= 0, got {self.hard_negatives}")
        if self.hard_negatives and not self.hard_negatives_from:
            raise ValueError("hard_negatives needs hard_negatives_from: the package whose "
                             "cascade finds them")


def _random_quad(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A quad of a number's size and shape anywhere in the photo, at any angle."""
    long_side = max(width, height)
    w = rng.uniform(0.08, 0.3) * long_side
    h = w * rng.uniform(0.1, 0.25)
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    box = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    centre = rng.uniform([0.1 * width, 0.1 * height], [0.9 * width, 0.9 * height])
    return box @ rotation.T + centre


def _beside(quad: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The quad moved within the card's plane to other print: rows below, field B to the right,
    the header above (hard negatives: card texture and text, no number)."""
    along, across = quad[1] - quad[0], quad[3] - quad[0]
    choice = rng.integers(3)
    if choice == 0:
        offset = across * rng.uniform(3.2, 6.0)  # the rows below, outside the crop's margin
    elif choice == 1:
        offset = along * rng.uniform(1.5, 2.2)  # field B and beyond
    else:
        offset = -across * rng.uniform(3.0, 3.6)  # the header
    return quad + offset


def _guess(rng: np.random.Generator, config: CropConfig, quad: np.ndarray, px: float,
           size: tuple[int, int], fine: bool) -> np.ndarray | None:
    """A perturbed guess that serving could meet and the refiner could answer, else None.
    Serving never refines an implausible quad (refine.is_plausible), and a nearly singular
    one maps the truth thousands of pixels outside the crop: such targets teach nothing and
    swamp the loss."""
    for _ in range(10):
        guess = config.errors.perturb(rng, quad, px, fine=fine)
        if not fine and rng.random() < config.rectangles:
            guess = refine.first_guess(guess)
        if not refine.is_plausible(guess, size):
            continue
        in_crop = refine.targets(refine.reading_order(guess), quad)[:8].reshape(4, 2)
        if np.abs(in_crop * refine.CROP_SCALE - refine.CROP_BOX).max() < refine.CROP_WIDTH:
            return guess
    return None


@functools.lru_cache(maxsize=1)
def _miner(package: str) -> tuple[Predictor, tempfile.TemporaryDirectory]:
    """The package's cascade, loaded once in each worker process (with its folder, kept)."""
    folder = tempfile.TemporaryDirectory(prefix="hard-negatives-")
    return load_predictor(package, folder.name)[0], folder


def hard_negative_quads(predictor: Predictor, decoded: Decoded, count: int
                        ) -> list[np.ndarray]:
    """On a photo without a certificate, the `count` quads where `predictor`'s refiner is
    surest of a number: each guess serving's search (around the locator's answer) and scan
    (over the whole photo) would try, refined once, the surest answers kept, where its next
    pass would look."""
    size = (decoded.letterbox.width, decoded.letterbox.height)
    scale = px_per_400(decoded)
    located = predictor.locate(decoded)
    answers = []
    for guess in [located, *refine.neighbours(located, scale),
                  *refine.scan([located], size, scale)]:
        answer = predictor.refine(decoded, guess)
        if refine.is_plausible(answer.corners, size):
            answers.append((answer.confidence, answer.corners))
    answers.sort(key=lambda a: -a[0])
    return [corners for _, corners in answers[:count]]


def _crops_of(args: tuple[Example, CropConfig, int]) -> tuple[np.ndarray, np.ndarray]:
    example, config, index = args
    rng = np.random.default_rng([config.seed, index])
    decoded = decode(example.path.read_bytes())
    width, height = example.width, example.height
    px = max(width, height) / 400.0
    guesses, truths = [], []
    if example.corners is not None:
        for copy in range(config.copies):
            guess = _guess(rng, config, example.corners, px, (width, height), fine=copy == 0)
            if guess is not None:
                guesses.append(guess)
                truths.append(example.corners)
        guesses.append(_beside(example.corners, rng))
        truths.append(None)
    else:
        covered = example.meta.get("covered_number")
        for n in range(config.negatives_per_photo):
            if covered is not None and n == 0:
                guesses.append(config.errors.perturb(rng, np.asarray(covered, float), px))
            else:
                guesses.append(_random_quad(rng, width, height))
            truths.append(None)
        if config.hard_negatives:
            mined = hard_negative_quads(_miner(config.hard_negatives_from)[0], decoded,
                                        config.hard_negatives)
            guesses += mined
            truths += [None] * len(mined)
    crops, targets = [], []
    for guess, truth in zip(guesses, truths, strict=True):
        guess = refine.reading_order(guess)
        crop, _ = refine.cut(decoded, guess)
        crops.append(crop)
        targets.append(refine.targets(guess, truth))
    return np.stack(crops), np.stack(targets)


def load_crops(folder: str | Path, config: CropConfig, workers: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(crops uint8 [N, 72, 192, 1], targets float32 [N, 10]) for a dataset folder, cached
    there and rebuilt when the labels or the crop settings change."""
    folder = Path(folder)
    examples = read_examples(folder)
    digest = hashlib.sha256(json.dumps({**asdict(config), "version": CROPS_VERSION},
                                       sort_keys=True).encode())
    digest.update((folder / "labels.jsonl").read_bytes() if (folder / "labels.jsonl").exists()
                  else b"")
    if config.hard_negatives:  # the package's bytes, not only its path, make the crops
        digest.update(sha256_file(config.hard_negatives_from).encode())
    tasks = [(e, config, i) for i, e in enumerate(examples)]
    return cached_arrays(folder / CROPS_FILE, digest.hexdigest(), _crops_of, tasks,
                         ("crops", "targets"), workers)


# --- The network ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RefinerConfig:
    filters: tuple[int, ...] = (16, 24, 32, 48, 64)
    dense: int = 96
    # Blocks after the first (1, 2, ...) whose first convolution strides by 2 instead of the
    # block ending in a max-pool: the same weights (a pooled refiner's load into it), and the
    # convolutions after it run on a quarter of the positions. Block 1's convolution on the
    # 36 x 96 map is a third of the pooled refiner's multiply-accumulates.
    strided_blocks: int = 0

    def __post_init__(self):
        if len(self.filters) != 5 or any(int(f) < 1 for f in self.filters):
            raise ValueError("filters: five positive widths (72 x 192 -> 2 x 6)")
        if self.dense < 1:
            raise ValueError(f"dense must be positive, got {self.dense}")
        # Beyond 2 a strided 9 x 24 map becomes 5 x 12 where the pool makes 4 x 12, and the
        # dense layer's weights no longer fit.
        if not 0 <= self.strided_blocks <= 2:
            raise ValueError(f"strided_blocks must be 0, 1 or 2, got {self.strided_blocks}")


def build_refiner(config: RefinerConfig | None = None) -> keras.Model:
    """Conv blocks down to 2 x 6 (a strided first convolution: the crop is mostly margin),
    Flatten to keep where things are, then one dense layer and the 10 outputs."""
    config = config or RefinerConfig()
    inputs = keras.Input((refine.CROP_HEIGHT, refine.CROP_WIDTH, 1), name="crop")
    first, *rest = config.filters
    x = layers.Conv2D(first, 3, strides=2, padding="same", use_bias=False, name="conv0")(inputs)
    x = layers.BatchNormalization(name="bn0")(x)
    x = layers.ReLU(name="relu0")(x)
    for block, filters in enumerate(rest, 1):
        strided = block <= config.strided_blocks
        for step in range(1 if block == 1 else 2):
            name = f"{block}{'ab'[step]}"
            x = layers.Conv2D(filters, 3, strides=2 if strided and step == 0 else 1,
                              padding="same", use_bias=False, name=f"conv{name}")(x)
            x = layers.BatchNormalization(name=f"bn{name}")(x)
            x = layers.ReLU(name=f"relu{name}")(x)
        if not strided:
            x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(config.dense, activation="relu", name="dense")(x)
    # Corners start on CROP_BOX (a guess is most likely right), the logits at 0.
    start = np.concatenate([(refine.CROP_BOX / refine.CROP_SCALE).reshape(8), [0.0, 0.0]])
    outputs = layers.Dense(refine.OUTPUT_SIZE, kernel_initializer="zeros",
                           bias_initializer=keras.initializers.Constant(start),
                           name="refined")(x)
    return keras.Model(inputs, outputs, name="refiner")


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
            source = (keras.saving.load_model(folder / REFINER_KERAS_FILE, compile=False)
                      if REFINER_KERAS_FILE in card["files"] else refiner_from_litert(
                          folder / card["refiner_model"], crops,
                          replace(config, strided_blocks=0)))
    else:
        source = keras.saving.load_model(init_from, compile=False)
    source_strided = sum(1 for layer in source.layers if isinstance(layer, layers.Conv2D)
                         and layer.name != "conv0" and tuple(layer.strides) == (2, 2))
    if source_strided > config.strided_blocks:
        raise ValueError(f"{init_from} strides {source_strided} blocks: train it with "
                         f"--strided-blocks {source_strided} (its weights in a pooled refiner "
                         f"would run where they never learnt to)")
    model = build_refiner(config)
    model.set_weights(source.get_weights())
    return model


def _bce(labels, logits):
    return ops.mean(ops.maximum(logits, 0) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits))))


@keras.saving.register_keras_serializable(package="certcorners")
def refiner_loss(y_true, y_pred):
    present = y_true[:, 9]
    scale = ops.convert_to_tensor(np.tile(refine.CROP_SCALE, 4).astype("float32"))
    corner = ops.mean(ops.abs(y_pred[:, :8] - y_true[:, :8]) * scale, axis=-1)
    weight = ops.sum(present) + 1e-6
    corner_loss = ops.sum(corner * present) / weight
    flip = ops.maximum(y_pred[:, 8], 0) - y_pred[:, 8] * y_true[:, 8] + ops.log1p(
        ops.exp(-ops.abs(y_pred[:, 8])))
    flip_loss = ops.sum(flip * present) / weight
    return (CORNER_WEIGHT * corner_loss + FLIP_WEIGHT * flip_loss
            + PRESENCE_WEIGHT * _bce(y_true[:, 9], y_pred[:, 9]))


@keras.saving.register_keras_serializable(package="certcorners")
def crop_corner_error_px(y_true, y_pred):
    """Mean Euclidean corner error in crop pixels over crops that hold a number."""
    present = y_true[:, 9]
    scale = ops.convert_to_tensor(refine.CROP_SCALE.astype("float32"))
    diff = ops.reshape(y_pred[:, :8] - y_true[:, :8], (-1, 4, 2)) * scale
    error = ops.mean(ops.sqrt(ops.sum(diff * diff, axis=-1) + 1e-12), axis=-1)
    return ops.sum(error * present) / (ops.sum(present) + 1e-6)


class CropBatches(Batches):
    """Crops as float32 batches in [0, 1]; training batches get photometric jitter (contrast
    and brightness) so the refiner leans on shapes, not levels."""

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        if self.shuffle:
            n = len(x)
            gain = self.rng.uniform(0.7, 1.3, (n, 1, 1, 1)).astype(np.float32)
            bias = self.rng.uniform(-0.15, 0.15, (n, 1, 1, 1)).astype(np.float32)
            x = np.clip(x * gain + bias, 0, 1)
        return x, y


@dataclass(frozen=True)
class RefinerTrainConfig(RunConfig):
    """Stage 2, the refiner: its own defaults, crops and network."""

    out_dir: str = "runs/refiner"
    epochs: int = 8
    batch_size: int = 64
    patience: int = 4
    crops: CropConfig = field(default_factory=CropConfig)
    model: RefinerConfig = field(default_factory=RefinerConfig)


def train_refiner(config: RefinerTrainConfig, datasets=None) -> dict:
    """Train the refiner; returns its metrics. `datasets` = ((crops, targets), (crops,
    targets)) or None to cut them from the config's folders."""
    if datasets is None:
        if not config.train_dirs or not config.val_dir:
            raise ValueError("train_dirs and val_dir are required when no datasets are given")
        source = config.crops.hard_negatives_from
        if config.crops.hard_negatives and not Path(source).is_file():
            raise ValueError(f"hard negatives from {source}: no such package file")
        parts = [load_crops(d, config.crops) for d in config.train_dirs]
        train_data = (np.concatenate([p[0] for p in parts]),
                      np.concatenate([p[1] for p in parts]))
        # Validation crops are cut as the run's are, from other guesses.
        val_data = load_crops(config.val_dir, replace(config.crops, seed=config.crops.seed + 1))
    else:
        train_data, val_data = datasets
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(config.to_json(), indent=2))
    keras.utils.set_random_seed(config.seed)
    model = (initial_refiner(config.init_from, config.model, train_data[0][:2048])
             if config.init_from else build_refiner(config.model))
    steps = config.epochs * math.ceil(len(train_data[0]) / config.batch_size)
    model.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.02)),
        loss=refiner_loss, metrics=[crop_corner_error_px])
    started = time.perf_counter()
    history = model.fit(
        CropBatches(*train_data, config.batch_size, shuffle=True, seed=config.seed),
        validation_data=CropBatches(*val_data, config.batch_size, shuffle=False),
        epochs=config.epochs, callbacks=fit_callbacks(out, config.patience),
        verbose=2)
    best = keras.saving.load_model(out / "best.keras") if (out / "best.keras").exists() else model
    best.save(out / "model.keras")
    evaluation = best.evaluate(CropBatches(*val_data, config.batch_size, shuffle=False),
                               verbose=0, return_dict=True)
    metrics = {
        "epochs_run": len(history.history.get("loss", [])),
        "train_seconds": round(time.perf_counter() - started, 1),
        "train_crops": int(len(train_data[0])),
        "train_crops_with_number": int(train_data[1][:, 9].sum()),
        "val_crops": int(len(val_data[0])),
        "val_loss": float(evaluation["loss"]),
        "val_crop_corner_error_px": float(evaluation["crop_corner_error_px"]),
        "parameters": int(best.count_params()),
    }
    (out / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
