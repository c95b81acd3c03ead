"""The BuildKit version a Docker Engine vendors, inferred from the engine's version."""

from __future__ import annotations

import pytest

from llbgen.builder.engine_buildkit import inferred_buildkit_version


@pytest.mark.parametrize(("engine", "buildkit"), [("26.1.5+dfsg1", "0.13"), ("28.5.2+dfsg4", "0.25"),
                                                  ("v27.3.1", "0.16"), ("99.0.0", None), ("", None), (None, None)])
def test_the_buildkit_an_engine_vendors_is_inferred_from_its_version(engine, buildkit) -> None:
    assert inferred_buildkit_version(engine) == buildkit
