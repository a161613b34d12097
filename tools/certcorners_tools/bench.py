"""Benchmark: LiteRT as served vs the TensorFlow baselines, the handler end to end, cold
starts, peak memory, and the floor. One run, side by side; prints a table, writes JSON.

    make bench            (python -m certcorners_tools.bench --out out/bench.json)

Every engine runs in a fresh process of its own, one after another, on the same inputs: the
TensorFlow thread settings must be made before TensorFlow starts, and a cold start is only
cold in a new process. The handler runs in the bare interpreter with the built layer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "out" / "bench"
PACKAGE = ROOT / "training" / "reference" / "model.tar.gz"
BENCH_KERAS_FILE = "bench-locator.keras"  # prepare() puts the package's Keras locator here


# --- helpers that run inside the measured processes ------------------------------------


def _percentiles(samples_ms: list[float]) -> dict:
    values = np.asarray(samples_ms)
    return {"n": len(values), "p50": round(float(np.percentile(values, 50)), 3),
            "p95": round(float(np.percentile(values, 95)), 3),
            "p99": round(float(np.percentile(values, 99)), 3)}


def proc_status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak_rss_mb() -> float:
    # Not ru_maxrss: Linux carries that across fork and exec, so a child would report its
    # parent's high-water mark; VmHWM starts afresh with the exec.
    return proc_status_mb("VmHWM")


def _timed(call, repeats: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def child_cascade(threads: int, model_dir: str, photos: list[str], repeats: int):
    """The served cascade on photos decoded beforehand: stage-1 resize and letterbox, stage 1,
    the refiner's crops and passes (and for a refused photo the second look), then for an
    answer the reader where the package has one; what the handler reports as `inference` and
    `read`. `read_p50` is the reader alone: its view, network and decoding."""
    from certcorners.model_store import predictor_for
    from certcorners.preprocessing import decode

    card = json.loads((Path(model_dir) / "model_card.json").read_text())
    predictor = predictor_for(Path(model_dir), card, threads)
    threshold = card.get("confidence_threshold")  # as served: refusals get the second look
    def served(decoded):
        prediction = predictor.predict_decoded(decoded, threshold)
        answered = threshold is None or prediction.confidence >= threshold
        if answered and predictor.reader is not None:
            predictor.read(decoded, prediction.corners)
        return prediction, answered

    results = {}
    for path in photos:
        decoded = decode(Path(path).read_bytes())
        results[Path(path).stem] = _percentiles(
            _timed(lambda d=decoded: served(d), repeats))
        prediction, answered = served(decoded)
        results[Path(path).stem]["answered"] = answered
        if answered and predictor.reader is not None:
            results[Path(path).stem]["read_p50"] = _percentiles(_timed(
                lambda d=decoded, c=prediction.corners: predictor.read(d, c), repeats))["p50"]
        results[Path(path).stem]["decode_p50"] = _percentiles(
            _timed(lambda p=path: decode(Path(p).read_bytes()), max(20, repeats // 5)))["p50"]
        results[Path(path).stem]["stages"] = _stage_times(predictor, served, decoded, repeats)
    return {"threads": threads, "photos": results, "peak_rss_mb": _peak_rss_mb()}


NETWORKS = ("locator", "refiner", "card_finder", "reader")


def _stage_times(predictor, served, decoded, repeats: int) -> dict:
    """Where one served call's time goes, averaged over `repeats` calls: each network's ms and
    runs, and the rest (resizes, crops, decoding the reader's output, the rules)."""
    spent, runs = dict.fromkeys(NETWORKS, 0.0), dict.fromkeys(NETWORKS, 0)
    networks = {name: getattr(predictor, name) for name in NETWORKS
                if getattr(predictor, name) is not None}
    for name, network in networks.items():
        def timed(array, name=name, run=network.run):
            started = time.perf_counter()
            try:
                return run(array)
            finally:
                spent[name] += (time.perf_counter() - started) * 1000
                runs[name] += 1

        network.run = timed  # an instance attribute over the class's method, removed below
    try:
        started = time.perf_counter()
        for _ in range(repeats):
            served(decoded)
        total = (time.perf_counter() - started) * 1000 / repeats
    finally:
        for network in networks.values():
            del network.run
    stages = {f"{name}_ms": round(spent[name] / repeats, 3) for name in NETWORKS}
    stages |= {f"{name}_runs": runs[name] / repeats for name in NETWORKS}
    stages["rest_ms"] = round(total - sum(spent.values()) / repeats, 3)
    return stages


def child_inference(engine: str, threads: int, model_dir: str, inputs: str, repeats: int):
    """One engine, batch 1, in this fresh process."""
    batch = np.load(inputs)
    if engine == "litert":
        from certcorners.model_card import locator_file
        from certcorners.predictor import Predictor

        card = json.loads((Path(model_dir) / "model_card.json").read_text())
        predictor = Predictor(Path(model_dir) / locator_file(card), num_threads=threads)
        items = iter(np.resize(np.arange(len(batch)), repeats + 10))
        samples = _timed(lambda: predictor.locator.run(batch[next(items)]), repeats)
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        import keras

        model = keras.saving.load_model(Path(model_dir) / BENCH_KERAS_FILE, compile=False)
        items = iter(np.resize(np.arange(len(batch)), repeats + 10))
        if engine == "keras-predict":
            samples = _timed(lambda: model.predict(batch[next(items)][None], verbose=0), repeats)
        else:
            samples = _timed(lambda: model(batch[next(items)][None], training=False), repeats)
    return {"engine": engine, "threads": threads, **_percentiles(samples),
            "peak_rss_mb": _peak_rss_mb()}


PACED_GAP_S = 0.1  # a request every ~0.1 s, as a person trying the local API sends them


def child_handler(events: list[str], repeats: int):
    """The warm handler (built layer, bare interpreter) on REST proxy events: back to back,
    and (the first event) with pauses between calls, as requests reach a real API."""
    import app

    from certcorners_tools.proxy import LambdaContext

    context = LambdaContext()

    def measure(event: dict, calls: int, gap_s: float = 0.0) -> dict:
        total, parts = [], {"decode": [], "inference": []}
        for _ in range(calls):
            time.sleep(gap_s)
            started = time.perf_counter()
            response = app.lambda_handler(event, context)
            total.append((time.perf_counter() - started) * 1000)
            timing = json.loads(response["body"])["timing_ms"]
            for key in parts:
                parts[key].append(timing[key])
        return {"end_to_end": _percentiles(total),
                "decode_and_preprocess_p50": round(statistics.median(parts["decode"]), 3),
                "inference_p50": round(statistics.median(parts["inference"]), 3),
                "rest_p50": round(statistics.median(total) - statistics.median(parts["decode"])
                                  - statistics.median(parts["inference"]), 3)}

    results = {}
    for path in events:
        event = json.loads(Path(path).read_text())
        for _ in range(10):
            app.lambda_handler(event, context)
        results[Path(path).stem] = {**measure(event, repeats),
                                    "decode_floor_p50": _decode_floor_ms(event, repeats)}
    first = json.loads(Path(events[0]).read_text())
    results["paced"] = {"event": Path(events[0]).stem, "gap_s": PACED_GAP_S,
                        **measure(first, max(20, repeats // 4), PACED_GAP_S)}
    results["peak_rss_mb"] = _peak_rss_mb()
    return results


def _decode_floor_ms(event: dict, repeats: int) -> float:
    """The fastest decode of the event's JPEG that Pillow offers the layer: libjpeg-turbo's
    smallest DCT scaling (draft to 1/8), grayscale. No answer can come faster than this."""
    import base64
    import io

    from PIL import Image

    data = base64.b64decode(event["body"])

    def decode_at_one_eighth():
        image = Image.open(io.BytesIO(data))
        image.draft("L", (image.width // 8, image.height // 8))
        image.load()

    return round(statistics.median(_timed(decode_at_one_eighth, max(20, repeats // 5))), 3)


def child_cold_litert(event: str, started: float):
    """Imports + fetch + verify + extract + interpreters + first response, from process start,
    split into phases: each library is imported on its own, in the order the function's own
    import would reach it, so the phases add up to the whole."""
    phases = {"interpreter_and_numpy": time.time() - started}  # numpy: bench's own import

    def phase(name, action):
        begun = time.time()
        action()
        phases[name] = time.time() - begun

    phase("pillow", lambda: __import__("PIL.Image"))
    phase("litert", lambda: __import__("ai_edge_litert.interpreter"))
    phase("powertools", lambda: __import__("aws_lambda_powertools.event_handler"))
    imported = {}
    # The function module itself: its own imports (certcorners), the S3 client, the model's
    # fetch, checks, extraction and interpreters.
    phase("function_module_and_model", lambda: imported.setdefault("app", __import__("app")))
    app = imported["app"]
    from certcorners_tools.proxy import LambdaContext

    begun = time.time()
    response = app.lambda_handler(json.loads(Path(event).read_text()), LambdaContext())
    done = time.time()
    phases["first_response"] = done - begun
    assert response["statusCode"] == 200, response
    model_load = app.store.loaded.load_seconds
    phases["model_fetch_verify_extract_load"] = model_load
    phases["function_module_and_model"] -= model_load
    phases["function_module"] = phases.pop("function_module_and_model")
    return {"total_s": done - started, "first_response_s": phases["first_response"],
            "model_load_s": model_load, "phases_s": phases, "peak_rss_mb": _peak_rss_mb()}


def child_cold_tensorflow(model_dir: str, inputs: str, started: float):
    import keras
    import tensorflow as tf  # noqa: F401

    model = keras.saving.load_model(Path(model_dir) / BENCH_KERAS_FILE, compile=False)
    model.predict(np.load(inputs)[:1], verbose=0)
    return {"total_s": time.time() - started, "peak_rss_mb": _peak_rss_mb()}


# --- the orchestrator ----------------------------------------------------------------------


def _run_child(args: list[str], env: dict | None = None, bare: bool = False) -> dict:
    from certcorners_tools import local

    if bare:
        command = [local.base_python(), "-S", __file__, *args]
    else:
        command = [sys.executable, "-m", "certcorners_tools.bench", *args]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    result = subprocess.run(command, capture_output=True, text=True, env=environment,
                            timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _cpu() -> dict:
    info = {"machine": platform.machine(), "cores": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["model"] = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                             if line.startswith("model name"))
        flags = next(line for line in text.splitlines() if line.startswith("flags")).split()
        info["avx512f"], info["avx2"], info["fma"] = ("avx512f" in flags, "avx2" in flags,
                                                      "fma" in flags)
    except (OSError, StopIteration):
        pass
    return info


def measured_peak_gflops(seconds: float = 3.0) -> float:
    """Single-thread float32 peak, as OpenBLAS's sgemm reaches it (the attainable peak)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    code = (
        "import numpy as np, time\n"
        "a = np.random.rand(1024, 1024).astype(np.float32); b = a.copy()\n"
        f"a @ b; best = 0.0; end = time.perf_counter() + {seconds}\n"
        "while time.perf_counter() < end:\n"
        "    t = time.perf_counter(); a @ b; dt = time.perf_counter() - t\n"
        "    best = max(best, 2 * 1024**3 / dt / 1e9)\n"
        "print(best)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return round(float(out.stdout.strip()), 1)


def _extracted(package: Path, model_dir: Path) -> str:
    """A model.tar.gz unpacked into model_dir (tarfile's data filter: no links out, no
    absolute paths), as the children load it."""
    import tarfile

    model_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(package) as tar:
        tar.extractall(model_dir, filter="data")
    return str(model_dir)


def prepare(work: Path) -> dict:
    """The model, inputs and events every engine shares."""
    from certcorners.preprocessing import to_model_input

    from certcorners_tools import local
    from certcorners_tools.events import event
    from training.packages import locator_keras_file
    from training.photo import scene_photo, synthetic_photo

    work.mkdir(parents=True, exist_ok=True)
    model_dir = _extracted(PACKAGE, work / "model")
    card = json.loads((Path(model_dir) / "model_card.json").read_text())
    # The TensorFlow engines' locator: the package's Keras training file, beside it.
    shutil.copy2(locator_keras_file(PACKAGE, card, Path(model_dir)),
                 Path(model_dir) / BENCH_KERAS_FILE)
    photos = {"1200x847": synthetic_photo(3, 9001, (1200, 847)).jpeg,
              "4032x3024": synthetic_photo(3, 9002, (4032, 3024)).jpeg}
    events, photo_files = [], []
    for name, jpeg in photos.items():
        path = work / f"event-{name}.json"
        path.write_text(json.dumps(event("POST", "/v1/corners", jpeg, "image/jpeg")))
        events.append(str(path))
        (work / f"photo-{name}.jpg").write_bytes(jpeg)
        photo_files.append(str(work / f"photo-{name}.jpg"))
    # A refusal costs more than an answer: the second look runs the cascade on turned views.
    refused = work / "photo-1200x847-no-certificate.jpg"
    refused.write_bytes(scene_photo(np.random.default_rng(9003), (1200, 847)).jpeg)
    photo_files.append(str(refused))
    inputs = np.stack([to_model_input(j)[0] for j in photos.values()] +
                      [to_model_input(p.read_bytes())[0]
                       for p in sorted(local.PHOTOS.glob("*.*")) if p.suffix != ".jsonl"])
    np.save(work / "inputs.npy", inputs)
    return {"model_dir": str(model_dir), "inputs": str(work / "inputs.npy"),
            "events": events, "photos": photo_files,
            "photo_bytes": {k: len(v) for k, v in photos.items()}}


def draft_accuracy(model_dir: str, count: int) -> dict:
    """The spec's metrics of the served cascade on held-out synthetic photos, decoded with
    and without draft mode."""
    from certcorners.model_store import predictor_for
    from certcorners.preprocessing import decode

    from training.evaluate import corner_metrics
    from training.photo import synthetic_photo

    card = json.loads((Path(model_dir) / "model_card.json").read_text())
    predictor = predictor_for(Path(model_dir), card, 1)
    threshold = card.get("confidence_threshold")  # as served, second look included
    truth, sizes, found = [], [], {True: [], False: []}
    for index in range(count):
        photo = synthetic_photo(3, 20000 + index)  # held-out seed, never trained on
        truth.append(photo.corners)
        sizes.append((photo.width, photo.height))
        for draft in (True, False):
            found[draft].append(predictor.predict_decoded(
                decode(photo.jpeg, draft=draft), threshold).corners)
    return {("draft" if d else "full_decode"): corner_metrics(np.stack(found[d]),
                                                              np.stack(truth), np.array(sizes))
            for d in (True, False)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certcorners_tools.bench")
    sub = parser.add_subparsers(dest="step")
    child = sub.add_parser("child")
    child.add_argument("kind")
    child.add_argument("payload")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench.json")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--handler-calls", type=int, default=500)
    parser.add_argument("--cold-runs", type=int, default=10)
    parser.add_argument("--accuracy-photos", type=int, default=200)
    parser.add_argument("--cascade-photos", type=Path, default=None,
                        help="only the cascade, 1 thread, on each photo of this folder, side "
                             "by side with --baseline: answers' and refusals' medians")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="an earlier model.tar.gz: its locator and cascade (1 thread) run "
                             "in turns with the committed package's, for side-by-side ratios")
    args = parser.parse_args(argv)
    if args.step == "child":
        payload = json.loads(args.payload)
        print(json.dumps(globals()[f"child_{args.kind}"](**payload)))
        return 0
    return run(args)


def run(args) -> int:
    from certcorners_tools import local

    if args.cascade_photos is not None:
        return cascade_photos(args)

    setup = prepare(WORK)
    model_dir, inputs = setup["model_dir"], setup["inputs"]
    report = {"machine": _cpu(), "python": platform.python_version(),
              "command": "make bench", "photo_bytes": setup["photo_bytes"]}

    print("inference alone (batch 1) ...", flush=True)
    rows = []
    for engine, repeats in (("litert", args.repeats), ("keras-call", args.repeats // 3),
                            ("keras-predict", args.repeats // 6)):
        for threads in (1, 2):
            rows.append(_run_child(["child", "inference", json.dumps(
                {"engine": engine, "threads": threads, "model_dir": model_dir,
                 "inputs": inputs, "repeats": repeats})]))
    report["inference"] = rows
    print("cascade inference (both stages, photos decoded beforehand) ...", flush=True)
    report["cascade"] = [_run_child(["child", "cascade", json.dumps(
        {"threads": threads, "model_dir": model_dir, "photos": setup["photos"],
         "repeats": args.repeats})]) for threads in (1, 2)]

    if args.baseline:
        print(f"side by side with {args.baseline} ...", flush=True)
        report["baseline"] = side_by_side(args.baseline, setup, args.repeats)

    s3_port = local.free_port()
    with local.local_s3(s3_port, PACKAGE), tempfile.TemporaryDirectory() as cache:
        env = {**local.function_environment(s3_port, cache), "PYTHONPATH": local.layer_path()}
        print("handler end to end, warm ...", flush=True)
        report["handler"] = _run_child(["child", "handler", json.dumps(
            {"events": setup["events"], "repeats": args.handler_calls})], env, bare=True)
        print("cold starts ...", flush=True)
        cold = []
        for run_index in range(args.cold_runs):
            run_env = {**env, "MODEL_CACHE_DIR": f"{cache}/cold-{run_index}"}
            cold.append(_run_child(["child", "cold_litert", json.dumps(
                {"event": setup["events"][0], "started": time.time()})], run_env, bare=True))
    tf_cold = [_run_child(["child", "cold_tensorflow", json.dumps(
        {"model_dir": model_dir, "inputs": inputs, "started": time.time()})])
        for _ in range(args.cold_runs)]
    report["cold_start"] = {
        "litert_median_s": round(statistics.median(c["total_s"] for c in cold), 3),
        "litert_model_load_median_s": round(statistics.median(c["model_load_s"] for c in cold),
                                            3),
        "litert_runs": [round(c["total_s"], 3) for c in cold],
        "litert_phases_median_s": {
            name: round(statistics.median(c["phases_s"][name] for c in cold), 3)
            for name in cold[0]["phases_s"]},
        "tensorflow_median_s": round(statistics.median(c["total_s"] for c in tf_cold), 3),
        "tensorflow_runs": [round(c["total_s"], 3) for c in tf_cold],
        "tensorflow_peak_rss_mb": max(c["peak_rss_mb"] for c in tf_cold),
        "litert_cold_peak_rss_mb": max(c["peak_rss_mb"] for c in cold),
    }

    print("floor ...", flush=True)
    card = json.loads((Path(model_dir) / "model_card.json").read_text())
    macs = card["multiply_accumulates"]
    from certcorners.policy import CascadePolicy

    passes = CascadePolicy.from_card(card).refine_passes if "refiner_model" in card else 0
    cascade_macs = macs + card.get("refiner_multiply_accumulates", 0) * passes
    peak = measured_peak_gflops()
    report["floor"] = {"macs": macs, "flops": 2 * macs, "peak_gflops_1_thread_sgemm": peak,
                       "floor_ms_1_thread": round(2 * macs / peak / 1e6, 3),
                       "cascade_macs": cascade_macs,
                       "cascade_floor_ms_1_thread": round(2 * cascade_macs / peak / 1e6, 3),
                       "parameters": card["parameters"] + card.get("refiner_parameters", 0)}
    print("draft-mode accuracy ...", flush=True)
    report["draft_accuracy"] = draft_accuracy(model_dir, args.accuracy_photos)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"\nwrote {args.out}")
    return 0


BASELINE_ROUNDS = 3


def side_by_side(baseline: Path, setup: dict, repeats: int) -> dict:
    """The committed package's locator alone and cascade (1 thread, the photos with a
    certificate) against `baseline`'s, in alternating fresh processes, BASELINE_ROUNDS
    rounds: the medians of each side's p50s and their ratios (baseline / committed)."""
    photos = [p for p in setup["photos"] if "no-certificate" not in p]
    sides = {"committed": setup["model_dir"],
             "baseline": _extracted(baseline, WORK / "baseline-model")}
    p50s = {side: {"locator": []} for side in sides}
    for _ in range(BASELINE_ROUNDS):
        for side, model_dir in sides.items():
            p50s[side]["locator"].append(_run_child(["child", "inference", json.dumps(
                {"engine": "litert", "threads": 1, "model_dir": model_dir,
                 "inputs": setup["inputs"], "repeats": repeats})])["p50"])
            cascade = _run_child(["child", "cascade", json.dumps(
                {"threads": 1, "model_dir": model_dir, "photos": photos,
                 "repeats": repeats})])
            for name, figures in cascade["photos"].items():
                p50s[side].setdefault(f"cascade {name}", []).append(figures["p50"])
    versions = {side: json.loads((Path(d) / "model_card.json").read_text())["version"]
                for side, d in sides.items()}
    medians = {side: {k: round(statistics.median(v), 3) for k, v in rows.items()}
               for side, rows in p50s.items()}
    return {"versions": versions, "rounds": BASELINE_ROUNDS, "p50_ms": medians,
            "baseline_over_committed": {k: round(medians["baseline"][k] / v, 2)
                                        for k, v in medians["committed"].items()}}


def _over_photos_p95(samples_ms: list[float]) -> float | None:
    """The 95th percentile over photos of each photo's p50 (None for no photo)."""
    return round(float(np.percentile(samples_ms, 95)), 2) if samples_ms else None


def cascade_photos(args) -> int:
    """The cascade alone (1 thread, photos decoded beforehand) on a folder's photos, the
    committed package and --baseline in alternating fresh processes: the median and the
    95th percentile over photos of each photo's p50, for the photos each side answers and
    those it refuses."""
    photos = sorted(str(p) for p in args.cascade_photos.iterdir()
                    if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        raise SystemExit(f"{args.cascade_photos} holds no photo")
    sides = {"committed": _extracted(PACKAGE, WORK / "model")}
    if args.baseline:
        sides["baseline"] = _extracted(args.baseline, WORK / "baseline-model")
    report = {"command": f"python -m certcorners_tools.bench --cascade-photos "
                         f"{args.cascade_photos} --repeats {args.repeats}"
                         + (f" --baseline {args.baseline}" if args.baseline else ""),
              "machine": _cpu(), "photos": len(photos), "sides": {}}
    for side, model_dir in sides.items():
        result = _run_child(["child", "cascade", json.dumps(
            {"threads": 1, "model_dir": model_dir, "photos": photos,
             "repeats": args.repeats})])["photos"]
        answered = [r["p50"] for r in result.values() if r["answered"]]
        refused = [r["p50"] for r in result.values() if not r["answered"]]
        # What a caller waits for: each answered photo's decode and cascade together.
        with_decode = [r["decode_p50"] + r["p50"] for r in result.values() if r["answered"]]
        version = json.loads((Path(model_dir) / "model_card.json").read_text())["version"]
        report["sides"][side] = {
            "version": version, "answered": len(answered), "refused": len(refused),
            "answer_p50_ms": round(statistics.median(answered), 2) if answered else None,
            "answer_p95_ms": _over_photos_p95(answered),
            "refusal_p50_ms": round(statistics.median(refused), 2) if refused else None,
            "refusal_p95_ms": _over_photos_p95(refused),
            "decode_p50_ms": round(statistics.median(r["decode_p50"]
                                                     for r in result.values()), 2),
            "answer_with_decode_p50_ms": round(statistics.median(with_decode), 2)
            if with_decode else None,
            "answer_with_decode_p95_ms": _over_photos_p95(with_decode)}
        reads = [r["read_p50"] for r in result.values() if "read_p50" in r]
        if reads:
            report["sides"][side]["reader_alone_p50_ms"] = round(statistics.median(reads), 2)
        answers = [r["stages"] for r in result.values() if r["answered"]]
        if answers:  # the median answer's parts, and how often each network runs on average
            report["sides"][side]["answer_stages"] = {
                key: round(statistics.median(a[key] for a in answers), 2) if key.endswith("_ms")
                else round(statistics.mean(a[key] for a in answers), 2) for key in answers[0]}
        print(f"{side:>10} {version}: {report['sides'][side]}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


def print_table(report: dict) -> None:
    rows = {(r["engine"], r["threads"]): r for r in report["inference"]}
    floor = report["floor"]["floor_ms_1_thread"]
    print(f"\nmachine: {report['machine'].get('model')} ({report['machine']['cores']} cores)")
    print("\n| inference, batch 1 | threads | p50 ms | p95 ms | x LiteRT p50 | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for (engine, threads), row in rows.items():
        ratio = row["p50"] / rows[("litert", threads)]["p50"]
        print(f"| {engine} | {threads} | {row['p50']:.2f} | {row['p95']:.2f} | {ratio:.1f} |"
              f" {row['peak_rss_mb']:.0f} |")
    print(f"\nfloor: {report['floor']['macs'] / 1e6:.1f} M MACs at "
          f"{report['floor']['peak_gflops_1_thread_sgemm']} GFLOP/s (1-thread sgemm) = "
          f"{floor:.2f} ms; LiteRT 1 thread = {rows[('litert', 1)]['p50'] / floor:.2f} x floor")
    cascade_floor = report["floor"]["cascade_floor_ms_1_thread"]
    print(f"\n| cascade inference (stage 1 + {report['floor']['cascade_macs'] / 1e6:.0f} M MACs)"
          " | threads | p50 ms | p95 ms | decode p50 ms | x floor |")
    print("|---|---|---|---|---|---|")
    for row in report["cascade"]:
        for name, figures in row["photos"].items():
            print(f"| {name} | {row['threads']} | {figures['p50']:.2f} | {figures['p95']:.2f} | "
                  f"{figures['decode_p50']:.2f} | {figures['p50'] / cascade_floor:.2f} |")
    print("\n| handler, warm | p50 ms | p95 ms | p99 ms | decode | inference | rest "
          "| 1/8 decode floor | x floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in report["handler"].items():
        if name in ("peak_rss_mb", "paced"):
            continue
        e2e = row["end_to_end"]
        print(f"| {name} (n={e2e['n']}) | {e2e['p50']:.2f} | {e2e['p95']:.2f} | "
              f"{e2e['p99']:.2f} | {row['decode_and_preprocess_p50']:.2f} | "
              f"{row['inference_p50']:.2f} | {row['rest_p50']:.2f} | "
              f"{row['decode_floor_p50']:.2f} | {e2e['p50'] / row['decode_floor_p50']:.2f} |")
    paced = report["handler"]["paced"]
    print(f"\nthe same handler with {paced['gap_s']:.1f} s between calls ({paced['event']}, "
          f"n={paced['end_to_end']['n']}): p50 {paced['end_to_end']['p50']:.2f} ms, inference "
          f"{paced['inference_p50']:.2f} ms (back to back: "
          f"{report['handler'][paced['event']]['inference_p50']:.2f} ms)")
    cold = report["cold_start"]
    print(f"\ncold start, median of {len(cold['litert_runs'])}: LiteRT handler "
          f"{cold['litert_median_s']:.3f} s (model fetch+verify+extract+load "
          f"{cold['litert_model_load_median_s']:.3f} s); TensorFlow "
          f"{cold['tensorflow_median_s']:.3f} s; ratio "
          f"{cold['tensorflow_median_s'] / cold['litert_median_s']:.1f} x")
    print("cold-start phases (median s): " + ", ".join(
        f"{name} {value:.3f}" for name, value in cold["litert_phases_median_s"].items()))
    print(f"peak RSS: warm handler {report['handler']['peak_rss_mb']:.0f} MB; TensorFlow "
          f"baseline {cold['tensorflow_peak_rss_mb']:.0f} MB")
    if "baseline" in report:
        side = report["baseline"]
        print(f"\n| 1 thread, p50 ms (median of {side['rounds']} alternating rounds) | "
              f"{side['versions']['committed']} | {side['versions']['baseline']} | ratio |")
        print("|---|---|---|---|")
        for key, value in side["p50_ms"]["committed"].items():
            print(f"| {key} | {value:.2f} | {side['p50_ms']['baseline'][key]:.2f} | "
                  f"{side['baseline_over_committed'][key]:.2f} x |")
    for mode, metrics in report["draft_accuracy"].items():
        print(f"{mode}: mean {metrics['mean_corner_error_px']} px, p95 "
              f"{metrics['p95_corner_error_px']} px, orientation {metrics['orientation_share']}")


if __name__ == "__main__":
    if __package__ in (None, ""):  # a child in the bare interpreter: only the stdlib + layer
        # The tools' own package; `certcorners` still comes from the built layer.
        sys.path.append(str(ROOT / "tools"))
    sys.exit(main())
