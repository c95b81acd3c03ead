"""The closing summary of a successful build."""

from __future__ import annotations

from llbgen.cli.build_summary import format_build_summary, format_wall_time

LAYERS = {"os": "reused", "python": "reused", "jupyter": "reused", "torch": "built", "init": "built"}


def test_summary_names_tags_digest_size_layers_time_and_next_commands():
    lines = format_build_summary(tags=["pytorch:2.3.0-cu121"], digest="sha256:" + "ab" * 32, size=9_812_000_000,
                                 layers=LAYERS, seconds=185.2, in_engine=True)
    assert lines == [
        "llbgen: built pytorch:2.3.0-cu121 in 3m05s",
        f"  image   sha256:{'ab' * 32} (9.81GB)",
        "  layers  2 built (torch, init), 3 reused (os, python, jupyter)",
        "  next    llbgen verify pytorch:2.3.0-cu121",
        "          IMAGE=pytorch:2.3.0-cu121 examples/docker-run.sh",
    ]


def test_summary_without_engine_image_has_no_next_commands_and_quotes_tags():
    lines = format_build_summary(tags=["reg/x:1", "reg/x:latest"], digest=None, size=None, layers={"os": "built"},
                                 seconds=4.25, in_engine=False)
    assert lines == [
        "llbgen: built reg/x:1, reg/x:latest in 4.2s",
        "  image   (no digest reported)",
        "  layers  1 built (os), 0 reused (none)",
    ]
    odd = format_build_summary(tags=["x:1;rm -rf /"], digest="sha256:1", size=None, layers={}, seconds=1,
                               in_engine=True)
    assert "  next    llbgen verify 'x:1;rm -rf /'" in odd


def test_wall_time_units():
    assert format_wall_time(42.34) == "42.3s"
    assert format_wall_time(3725) == "1h02m"
