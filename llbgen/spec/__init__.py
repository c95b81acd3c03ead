"""The image spec: what the user asks for, the compatibility data it is checked
against, and the resolved spec a build runs from.

- ``model``        ``ImageSpec`` (what the user gives: flags and/or llbgen.toml)
- ``compat``       torch/CUDA/Python/Miniconda facts, loaded from ``compat_data.json``
- ``resolve``      ``resolve_spec``: defaults filled, combinations checked -> ``ResolvedSpec``
- ``toml_config``  ``load_spec``: llbgen.toml plus flag overrides, resolved
"""

from llbgen.spec.model import ImageSpec, Mirrors, Proxy
from llbgen.spec.resolve import MinicondaPick, ResolvedSpec, check_values, resolve_spec, resolve_values
from llbgen.spec.toml_config import load_spec

__all__ = [
    "ImageSpec",
    "MinicondaPick",
    "Mirrors",
    "Proxy",
    "ResolvedSpec",
    "check_values",
    "load_spec",
    "resolve_spec",
    "resolve_values",
]
