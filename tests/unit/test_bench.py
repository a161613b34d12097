"""The benchmark's breakdown of a served call: each network's runs are counted as the
predictor makes them, and the predictor is left as it was."""

from __future__ import annotations

from certcorners.preprocessing import decode
from certcorners_tools.bench import NETWORKS, _stage_times

from tests.conftest import HELD_OUT


def test_the_stage_breakdown_counts_each_network_s_runs_and_restores_the_predictor(
        reference_predictor, reference_threshold):
    photo = next(p for p in sorted(HELD_OUT.glob("*.jpg")) if "without" not in p.name)
    decoded = decode(photo.read_bytes())
    threshold = reference_threshold

    def served(decoded):
        prediction = reference_predictor.predict_decoded(decoded, threshold)
        reference_predictor.read(decoded, prediction.corners)

    stages = _stage_times(reference_predictor, served, decoded, repeats=2)
    # A held-out certificate the first look answers: one locator run, at least two refiner
    # passes, one reading, and no card finder.
    assert stages["locator_runs"] == 1 and stages["reader_runs"] == 1
    assert 2 <= stages["refiner_runs"] <= reference_predictor.policy.refine_passes + 1
    assert stages["card_finder_runs"] == 0 and stages["card_finder_ms"] == 0
    assert all(stages[f"{name}_ms"] >= 0 for name in NETWORKS) and stages["rest_ms"] > 0
    for name in NETWORKS:  # the timing wrappers are gone: the class's own run is back
        assert "run" not in vars(getattr(reference_predictor, name))


def test_the_cascade_photos_report_times_what_a_caller_waits_for(tmp_path):
    """`bench --cascade-photos`: the answered photos' decode and cascade together, beside
    each apart; the photo without a certificate is a refusal."""
    import json
    import shutil

    from certcorners_tools import bench

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("000000.jpg", "000001.jpg", "desk-without-certificate.jpg"):
        shutil.copy(HELD_OUT / name, photos / name)
    out = tmp_path / "bench.json"
    assert bench.main(["--cascade-photos", str(photos), "--repeats", "1", "--out",
                       str(out)]) == 0
    side = json.loads(out.read_text())["sides"]["committed"]
    assert side["answered"] == 2 and side["refused"] == 1
    assert side["answer_with_decode_p50_ms"] > side["answer_p50_ms"]
    assert side["answer_with_decode_p95_ms"] >= side["answer_with_decode_p50_ms"]
