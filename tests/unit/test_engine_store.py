"""The one answer to "which image store does this Docker Engine use?": its /info, as `docker info` shows it."""

from __future__ import annotations

from llbgen.builder.engine_api import image_store_of


def test_the_containerd_store_reports_a_snapshotter_driver_type() -> None:
    info = {"Driver": "overlayfs", "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]}
    assert image_store_of(info) == "containerd"


def test_a_graphdriver_is_the_classic_store() -> None:
    assert image_store_of({"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]}) == "classic"
    assert image_store_of({"Driver": "vfs", "DriverStatus": None}) == "classic"
