"""bench-networks: untrained designs converted to LiteRT and timed as served."""

import pytest

from training.locator import LocatorConfig, build_locator
from training.network_speed import bench_networks, parse_design


def test_each_design_is_converted_timed_and_set_beside_the_first_of_its_kind():
    report = bench_networks(["8,16,24,32,48,96:3", "4,8,16,24,48,96:4"],
                            ["12,16,24,32,48:2"], rounds=2, calls=1)
    assert list(report) == ["locator 8,16,24,32,48,96:3", "locator 4,8,16,24,48,96:4",
                            "refiner 12,16,24,32,48:2"]
    narrow = LocatorConfig(filters=(4, 8, 16, 24, 48, 96), strided_blocks=4)
    assert report["locator 4,8,16,24,48,96:4"]["parameters"] == build_locator(
        narrow).count_params()
    assert report["locator 8,16,24,32,48,96:3"]["x_first"] == 1.0
    assert report["refiner 12,16,24,32,48:2"]["x_first"] == 1.0
    assert all(row["ms"] > 0 for row in report.values())


@pytest.mark.parametrize("text", ["8,x:3", "8,16:two", ""])
def test_a_design_that_is_not_widths_and_strides_is_a_value_error(text):
    with pytest.raises(ValueError, match="WIDTHS:STRIDED"):
        parse_design(text)


def test_the_command_needs_a_design():
    from training.__main__ import main

    assert main(["bench-networks"]) == 2
