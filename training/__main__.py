"""python -m training <step> ...: generate, bench-data, bench-networks, augment,
train-locator, train-finder, train-refiner, reader-views, train-reader, evaluate, export,
recard, publish, demo, and run (a recipe: training/recipes/*.toml)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _widths(text: str) -> tuple[int, ...]:
    """"8,12,16": the widths of a network's blocks, in order."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated whole numbers, got {text!r}") from None
    if any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError(f"widths must be at least 1, got {text!r}")
    return widths


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    steps = root.add_subparsers(dest="step", required=True)

    p = steps.add_parser("generate", help="synthetic photos + labels.jsonl, from a seed",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, type=Path,
                   help="new dataset folder (an interrupted run there resumes)")
    p.add_argument("--count", required=True, type=_positive,
                   help="photos of the certificate")
    p.add_argument("--negatives", type=int, default=0,
                   help="photos without a findable number (no card, or its number covered)")
    p.add_argument("--seed", type=int, default=1, help="same seed, same photos")
    p.add_argument("--phone-share", type=float, default=0.0,
                   help="share of phone photos (12 MP, the card small: the spec's 'Phone "
                        "photos'); 0: none")
    p.add_argument("--phone-profile", choices=("phone", "phone-view"), default="phone",
                   help="what those photos are: 'phone' at full size, or 'phone-view', the "
                        "same composition at ~640 px (fast; what the card finder trains on)")
    p.add_argument("--spec-profile", choices=("spec", "spec-view"), default="spec",
                   help="what the other photos are: 'spec' (800-2000 px), or 'spec-view', "
                        "the same compositions at ~540 px (fast; for the locator)")
    p.add_argument("--workers", type=_positive, default=None,
                   help="processes (default: all cores)")

    p = steps.add_parser("bench-data", help="training examples a second, one core, old and "
                         "new side by side: the locator's and the card finder's canvases from "
                         "full-size photos and from ~540-640 px ones; the reader's view from "
                         "whole photos and drawn alone",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--count", type=_positive, default=20, help="makings of each a round")
    p.add_argument("--rounds", type=_positive, default=3, help="rounds, profiles alternating")

    p = steps.add_parser("bench-networks", help="ms a call of untrained network designs as "
                         "served (LiteRT, 1 thread), in turns: a design timed before training",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--locator", action="append", default=[], metavar="WIDTHS:STRIDED",
                   help="a locator design, e.g. 8,12,16,24,48,96:4 (repeat for more)")
    p.add_argument("--refiner", action="append", default=[], metavar="WIDTHS:STRIDED",
                   help="a refiner design, e.g. 12,16,24,32,48:2 (repeat for more)")
    p.add_argument("--rounds", type=_positive, default=30, help="rounds, designs in turns")

    p = steps.add_parser("augment", help="augmented copies of your own labelled photos",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--source", required=True, type=Path,
                   help="folder with labels.jsonl or LabelMe JSON files")
    p.add_argument("--out", required=True, type=Path, help="new dataset folder")
    p.add_argument("--copies", type=int, default=20, help="variants per photo (plus itself)")
    p.add_argument("--seed", type=int, default=1, help="same seed, same variants")

    defaults = argparse.ArgumentDefaultsHelpFormatter
    p = steps.add_parser("train-locator", help="fit stage 1, the locator (400 x 400 whole photo)",
                         formatter_class=defaults)
    _training_options(p, epochs=40, batch_size=32, learning_rate=2e-3, patience=8)
    p.add_argument("--strided-blocks", type=int, default=0,
                   help="leading blocks with a stride-2 convolution instead of a max-pool "
                        "(faster; --init-from a pooled model's weights loads into it)")
    p.add_argument("--filters", type=_widths, default=None,
                   help="each block's convolution width, e.g. 8,12,16,24,48,96 (default: "
                        "LocatorConfig's; --init-from: the model's own)")

    p = steps.add_parser("train-finder", help="fit the card finder (the card's box on the "
                         "400 x 400 canvas, and whether there is a card)", formatter_class=defaults)
    _training_options(p, epochs=10, batch_size=32, learning_rate=1e-3, patience=4)
    p.add_argument("--strided-blocks", type=int, default=3,
                   help="leading blocks with a stride-2 convolution (as the locator's)")
    p.add_argument("--filters", type=_widths, default=None,
                   help="each block's convolution width (default: LocatorConfig's; as the "
                        "locator's it starts from)")

    p = steps.add_parser("reader-views", help="synthetic views of the number and its text, "
                         "for the reader (fast: only the number is drawn)",
                         formatter_class=defaults)
    p.add_argument("--out", required=True, type=Path, help="folder for reader-views.npz")
    p.add_argument("--cards", required=True, type=_positive,
                   help="cards rendered (four views each)")
    p.add_argument("--seed", type=int, default=1, help="same seed, same views")
    p.add_argument("--workers", type=_positive, default=None,
                   help="processes (default: all cores)")

    p = steps.add_parser("train-reader", help="fit stage 3, the reader (the number's text, "
                         "CTC) on reader-views folders or labelled photos with text",
                         formatter_class=defaults)
    _training_options(p, epochs=30, batch_size=64, learning_rate=2e-3, patience=5)
    p.add_argument("--view-jitter-px", type=float, default=0.0,
                   help="warp each training view as if its corners were off by up to this "
                        "many view pixels (the refiner's corners are, a little)")
    p.add_argument("--edge-jitter-px", type=float, default=0.0,
                   help="and move each edge of the quad as a whole by up to this many view "
                        "pixels (served corners' errors are correlated)")
    p.add_argument("--strided-stem", action="store_true",
                   help="the first convolution strides 2 instead of being max-pooled: the "
                        "same weights, ~a third less time a view")

    p = steps.add_parser("train-refiner", help="fit stage 2, the refiner (the number's crop)",
                         formatter_class=defaults)
    _training_options(p, epochs=8, batch_size=64, learning_rate=2e-3, patience=4)
    p.add_argument("--copies", type=_positive, default=6,
                   help="guesses (crops) per photo with a certificate")
    p.add_argument("--shift", type=float, default=4.0,
                   help="sigma (px at the 400-px scale) of a guess's shift from the truth: "
                        "cover stage 1's errors (its model card)")
    p.add_argument("--wide-shift", type=float, default=9.0,
                   help="the same for one guess in four")
    p.add_argument("--rectangles", type=float, default=0.0,
                   help="share of the wider guesses cut as serving cuts its first crop: "
                        "around a number-shaped rectangle where the guess is")
    p.add_argument("--strided-blocks", type=int, default=0,
                   help="blocks after the first whose first convolution strides by 2 instead "
                        "of a max-pool ending the block (faster; --init-from a pooled "
                        "refiner's weights, or a package's refiner, loads into it)")
    p.add_argument("--filters", type=_widths, default=None,
                   help="the five blocks' convolution widths, e.g. 12,16,24,32,48 (default: "
                        "RefinerConfig's; --init-from: the model's own)")
    p.add_argument("--hard-negatives", type=int, default=0,
                   help="crops more per photo without a certificate, where the cascade of "
                        "--hard-negatives-from is surest of a number (print serving's search "
                        "and scan could take for one)")
    p.add_argument("--hard-negatives-from", type=Path, default=None,
                   help="the package (model.tar.gz) whose cascade finds the hard negatives")

    p = steps.add_parser("evaluate", help="spec metrics (stage 1 and cascade), refusals, "
                         "breakdowns, worst overlays", formatter_class=defaults)
    p.add_argument("--model", required=True, type=Path,
                   help="a model.tar.gz, an extracted package folder, or a stage-1 .tflite")
    p.add_argument("--data", required=True, type=Path, action="append",
                   help="labelled folder (labels.jsonl; corners null = no certificate); "
                        "repeat for several")
    p.add_argument("--out", required=True, type=Path, help="folder for evaluation.json and "
                   "the overlays")
    p.add_argument("--worst", type=int, default=12, help="overlays of the worst photos")
    p.add_argument("--threshold", type=float, default=None,
                   help="refusal threshold (default: the model card's)")

    p = steps.add_parser("export", help="LiteRT export of both stages, parity checks, "
                         "threshold, model card, tarball", formatter_class=defaults)
    p.add_argument("--run", required=True, type=Path,
                   help="stage 1's run folder (with --locator-from: a new folder)")
    p.add_argument("--locator-from", type=Path, default=None,
                   help="an earlier model.tar.gz whose locator this package reuses as is")
    p.add_argument("--refiner-run", type=Path, default=None,
                   help="the refiner's run folder (omit for a stage-1-only package)")
    p.add_argument("--refiner-from", type=Path, default=None,
                   help="or an earlier model.tar.gz whose refiner this package reuses as is")
    p.add_argument("--val", type=Path, default=None,
                   help="validation folder the refusal threshold is chosen on")
    p.add_argument("--threshold", type=float, default=None,
                   help="a refusal threshold fixed beforehand instead of the one chosen on "
                        "--val (its figures on --val are recorded all the same)")
    p.add_argument("--test", required=True, type=Path, help="held-out labelled folder")
    p.add_argument("--version", default=None, help="default: date-time and git commit")
    p.add_argument("--notes", default="", help="how the model was made, what limits it")
    p.add_argument("--report", type=Path, action="append", default=[],
                   help="a labelled folder measured for the card only, never used to choose "
                        "anything (e.g. a foreign evaluation set); repeat for several")

    p = steps.add_parser("recard", help="a package's networks as they are, with a card "
                         "measured again as serving runs them now", formatter_class=defaults)
    p.add_argument("--package", required=True, type=Path, help="an exported model.tar.gz")
    p.add_argument("--out", required=True, type=Path,
                   help="folder for package/ (the new model.tar.gz) and the evaluations")
    p.add_argument("--version", required=True, help="the new package's version")
    p.add_argument("--val", type=Path, default=None,
                   help="the validation folder (its figures as served go in the card)")
    p.add_argument("--test", required=True, type=Path, help="held-out labelled folder")
    p.add_argument("--why", default="", help="what changed in serving")
    p.add_argument("--card-finder", type=Path, default=None,
                   help="a card finder's run folder (train-finder): added to the package")
    p.add_argument("--reader", type=Path, default=None,
                   help="a reader's run folder (train-reader): added to the package, its "
                        "threshold chosen on --val and any --reader-val")
    p.add_argument("--reader-val", type=Path, nargs="+", default=[],
                   help="more validation folders the reader's threshold is chosen on too "
                        "(phone photos, say)")
    p.add_argument("--policy", action="append", default=[], metavar="RULE=VALUE",
                   help="a cascade rule that replaces the card's (certcorners.policy), e.g. "
                        "card_presence=0.5; repeat for several")
    p.add_argument("--report", type=Path, action="append", default=[],
                   help="a labelled folder measured for the card only; repeat for several")

    p = steps.add_parser("publish", help="upload model.tar.gz to S3 (never overwrites)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--package", required=True, type=Path, help="an exported model.tar.gz")
    p.add_argument("--bucket", required=True, help="the stack's ModelBucketName output")
    p.add_argument("--prefix", default="models", help="key prefix: PREFIX/VERSION/model.tar.gz")
    p.add_argument("--version", default=None, help="default: the model card's version")

    p = steps.add_parser("run", help="a recipe (training/recipes/*.toml): its datasets, "
                         "phases and export, each skipped when its output is there")
    p.add_argument("recipe", type=Path, help="e.g. training/recipes/reference.toml")
    p.add_argument("--dry-run", action="store_true", help="print the steps, run none")
    p.add_argument("--only", default="", help="comma-separated step names: those alone")
    p.add_argument("--deliver-only", action="store_true",
                   help="copy the last package to [deliver].to and run nothing")

    p = steps.add_parser("demo", help="generate -> train -> export -> evaluate, small",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="everything goes here")
    p.add_argument("--count", type=_positive, default=240, help="training photos")
    p.add_argument("--epochs", type=_positive, default=3, help="stage-1 epochs")
    return root


def _training_options(p, epochs, batch_size, learning_rate, patience) -> None:
    p.add_argument("--train", required=True, nargs="+", type=Path, help="dataset folders")
    p.add_argument("--val", required=True, type=Path, help="validation dataset folder")
    p.add_argument("--out", required=True, type=Path, help="run folder (resumes if present)")
    p.add_argument("--epochs", type=_positive, default=epochs, help="planned epochs")
    p.add_argument("--batch-size", type=_positive, default=batch_size, help="photos a step")
    p.add_argument("--learning-rate", type=float, default=learning_rate,
                   help="peak of the cosine schedule")
    p.add_argument("--patience", type=_positive, default=patience,
                   help="epochs without improvement before stopping")
    p.add_argument("--seed", type=int, default=0, help="weights and shuffling")
    p.add_argument("--init-from", type=Path, default=None,
                   help="a .keras model to start from (continue, or fine-tune the reference); "
                        "train-refiner also takes a package (model.tar.gz) and its refiner")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except ValueError as exc:  # bad arguments or data: say what, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _widths_option(args) -> dict:
    """--filters for a network's config, where given (else the config's default)."""
    return {} if args.filters is None else {"filters": args.filters}


def _run_options(args) -> dict:
    """What every training step's options give its RunConfig (training.fit)."""
    return {"train_dirs": tuple(str(p) for p in args.train), "val_dir": str(args.val),
            "out_dir": str(args.out), "epochs": args.epochs, "batch_size": args.batch_size,
            "learning_rate": args.learning_rate, "patience": args.patience, "seed": args.seed,
            "init_from": str(args.init_from or "")}


def _policy_rules(rules: list[str]) -> dict:
    """["card_presence=0.5", "second_look_turns=1,3", "search_steps=[[1,0,0],[0,0,45]]"] ->
    {"card_presence": 0.5, ...}: JSON values as they are, comma lists as lists (the policy
    checks names and values)."""
    import json

    parsed = {}
    for rule in rules:
        name, sep, value = rule.partition("=")
        if not sep or not name:
            raise ValueError(f"a policy rule is RULE=VALUE, got {rule!r}")
        try:
            parsed[name] = json.loads(value)
        except json.JSONDecodeError:
            try:
                parsed[name] = [json.loads(v) for v in value.split(",") if v]
            except json.JSONDecodeError:
                raise ValueError(f"a policy rule's value is a number, a comma list or JSON, "
                                 f"got {rule!r}") from None
    return parsed


def _run(args) -> int:
    if args.step == "generate":
        from training.dataset import generate

        print(f"wrote {generate(args.out, args.count, args.seed, args.workers, args.negatives,
                                args.phone_share, args.phone_profile, args.spec_profile)}")
    elif args.step == "bench-data":
        import json

        from training.bench import bench_data

        print(json.dumps(bench_data(args.count, args.rounds), indent=2))
    elif args.step == "bench-networks":
        import json

        from training.network_speed import bench_networks

        if not args.locator and not args.refiner:
            raise ValueError("name at least one --locator or --refiner design")
        print(json.dumps(bench_networks(args.locator, args.refiner, args.rounds), indent=2))
    elif args.step == "augment":
        from training.dataset import augment

        print(f"wrote {augment(args.source, args.out, args.copies, args.seed)}")
    elif args.step == "train-locator":
        from training.locator import LocatorConfig, LocatorTrainConfig, train_locator

        config = LocatorTrainConfig(**_run_options(args),
                                    model=LocatorConfig(**_widths_option(args),
                                                        strided_blocks=args.strided_blocks))
        for key, value in train_locator(config).items():
            print(f"{key:>24}: {value}")
    elif args.step == "train-finder":
        from training.finder import FinderConfig, train_finder
        from training.locator import LocatorConfig

        config = FinderConfig(**_run_options(args),
                              model=LocatorConfig(**_widths_option(args),
                                                  strided_blocks=args.strided_blocks))
        for key, value in train_finder(config).items():
            print(f"{key:>24}: {value}")
    elif args.step == "reader-views":
        from training.reader_data import write_views

        print(f"wrote {write_views(args.out, args.cards, args.seed, args.workers)}")
    elif args.step == "train-reader":
        from training.reader import ReaderConfig, train_reader

        config = ReaderConfig(**_run_options(args), view_jitter_px=args.view_jitter_px,
                              edge_jitter_px=args.edge_jitter_px, strided_stem=args.strided_stem)
        for key, value in train_reader(config).items():
            print(f"{key:>24}: {value}")
    elif args.step == "train-refiner":
        from training.refiner import (
            CropConfig,
            GuessErrors,
            RefinerConfig,
            RefinerTrainConfig,
            train_refiner,
        )

        config = RefinerTrainConfig(
            **_run_options(args), crops=CropConfig(
                copies=args.copies, rectangles=args.rectangles,
                errors=GuessErrors(shift=args.shift, wide_shift=args.wide_shift),
                hard_negatives=args.hard_negatives,
                hard_negatives_from=str(args.hard_negatives_from or "")),
            model=RefinerConfig(**_widths_option(args),
                                strided_blocks=args.strided_blocks))
        for key, value in train_refiner(config).items():
            print(f"{key:>24}: {value}")
    elif args.step == "evaluate":
        from training.evaluate import evaluate

        for folder in args.data:
            out = args.out / folder.name if len(args.data) > 1 else args.out
            evaluate(args.model, folder, out, args.worst, args.threshold)
    elif args.step == "export":
        from training.export import export

        export(args.run, args.test, args.version, notes=args.notes,
               refiner_run=args.refiner_run, val_dir=args.val, report=tuple(args.report),
               refiner_package=args.refiner_from, locator_package=args.locator_from,
               threshold=args.threshold)
    elif args.step == "recard":
        from training.export import recard

        recard(args.package, args.out, args.test, args.version, val_dir=args.val,
               report=tuple(args.report), why=args.why, card_finder_run=args.card_finder,
               reader_run=args.reader, policy=_policy_rules(args.policy),
               reader_val=tuple(args.reader_val))
    elif args.step == "publish":
        # Imported here, not for every step: boto3 is needed to publish only (a GPU machine
        # that generates and trains has none).
        from training.publish import PublishError, publish

        try:
            publish(args.package, args.bucket, args.prefix, args.version)
        except PublishError as exc:  # the bucket, the credentials or the version: one line
            print(f"error: {exc}", file=sys.stderr)
            return 1
    elif args.step == "run":
        from training.recipe import deliver, load, run

        try:
            only = {name for name in args.only.split(",") if name} or None
            if args.deliver_only and (only or args.dry_run):
                raise ValueError("--deliver-only runs nothing: leave out --only and --dry-run")
            if args.deliver_only:
                deliver(load(args.recipe))
            else:
                run(load(args.recipe), dry_run=args.dry_run, only=only)
        except RuntimeError as exc:  # a step failed: its output is in the recipe's log
            print(f"error: {exc}", file=sys.stderr)
            return 1
    elif args.step == "demo":
        from training.dataset import generate
        from training.export import export
        from training.locator import LocatorTrainConfig, train_locator

        out = args.out
        train_dir, val_dir, test_dir = out / "data/train", out / "data/val", out / "data/test"
        for folder, count, seed in ((train_dir, args.count, 101), (val_dir, 40, 102),
                                    (test_dir, 40, 103)):
            if not (folder / "labels.jsonl").exists():
                generate(folder, count, seed)
        train_locator(LocatorTrainConfig(train_dirs=(str(train_dir),), val_dir=str(val_dir),
                                         out_dir=str(out / "run"), epochs=args.epochs))
        export(out / "run", test_dir, version="demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
