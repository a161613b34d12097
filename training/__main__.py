"""python -m training <step> ...: generate, augment, train, evaluate, export, publish, demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    steps = root.add_subparsers(dest="step", required=True)

    p = steps.add_parser("generate", help="synthetic photos + labels.jsonl, from a seed")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--count", required=True, type=_positive)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=_positive, default=None)

    p = steps.add_parser("augment", help="augmented copies of your own labelled photos")
    p.add_argument("--source", required=True, type=Path,
                   help="folder with labels.jsonl or LabelMe JSON files")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--copies", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)

    p = steps.add_parser("train", help="fit the corner regressor")
    p.add_argument("--train", required=True, nargs="+", type=Path, help="dataset folders")
    p.add_argument("--val", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="run folder (resumes if present)")
    p.add_argument("--epochs", type=_positive, default=40)
    p.add_argument("--batch-size", type=_positive, default=32)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--patience", type=_positive, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-from", type=Path, default=None,
                   help="a .keras model to start from (continue, or fine-tune the reference)")

    p = steps.add_parser("evaluate", help="spec metrics + worst-case overlays")
    p.add_argument("--model", required=True, type=Path, help="a .tflite file")
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--worst", type=int, default=12)

    p = steps.add_parser("export", help="LiteRT export, parity check, model card, tarball")
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path, help="held-out labelled folder")
    p.add_argument("--version", default=None)
    p.add_argument("--notes", default="", help="how the model was made, what limits it")

    p = steps.add_parser("publish", help="upload model.tar.gz to S3 (never overwrites)")
    p.add_argument("--package", required=True, type=Path)
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="models")
    p.add_argument("--version", default=None, help="defaults to the model card's version")

    p = steps.add_parser("demo", help="generate -> train -> export -> evaluate, small")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--count", type=_positive, default=240)
    p.add_argument("--epochs", type=_positive, default=3)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except ValueError as exc:  # bad arguments or data: say what, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.step == "generate":
        from training.dataset import generate

        print(f"wrote {generate(args.out, args.count, args.seed, args.workers)}")
    elif args.step == "augment":
        from training.dataset import augment

        print(f"wrote {augment(args.source, args.out, args.copies, args.seed)}")
    elif args.step == "train":
        from training.train import TrainConfig, train

        config = TrainConfig(tuple(str(p) for p in args.train), str(args.val), str(args.out),
                             args.epochs, args.batch_size, args.learning_rate, args.patience,
                             args.seed, str(args.init_from or ""))
        for key, value in train(config).items():
            print(f"{key:>24}: {value}")
    elif args.step == "evaluate":
        from training.evaluate import evaluate

        evaluate(args.model, args.data, args.out, args.worst)
    elif args.step == "export":
        from training.export import export

        export(args.run, args.test, args.version, notes=args.notes)
    elif args.step == "publish":
        from training.publish import publish

        publish(args.package, args.bucket, args.prefix, args.version)
    elif args.step == "demo":
        from training.dataset import generate
        from training.export import export
        from training.train import TrainConfig, train

        out = args.out
        train_dir, val_dir, test_dir = out / "data/train", out / "data/val", out / "data/test"
        for folder, count, seed in ((train_dir, args.count, 101), (val_dir, 40, 102),
                                    (test_dir, 40, 103)):
            if not (folder / "labels.jsonl").exists():
                generate(folder, count, seed)
        train(TrainConfig((str(train_dir),), str(val_dir), str(out / "run"), args.epochs))
        export(out / "run", test_dir, version="demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
