"""``llbgen bake``: a matrix of PyTorch images from one TOML file, built concurrently on one or more builders.

- ``model``      the bake file as a pydantic model (shared defaults, options, axes, include/exclude)
- ``expand``     axes x include/exclude -> named assignments (GitHub Actions matrix rules)
- ``overrides``  what the command line sets for every variant (``--set``, caches)
- ``variants``   every variant resolved with the spec resolver; all problems in one error
- ``schedule``   which builder a variant goes to (least loaded)
- ``progress``   concurrent progress, one prefixed line at a time
- ``run``        the bounded concurrent build of every variant
- ``sharing``    crediting steps BuildKit ran once for several concurrent variants
- ``size``       image size from the engine or the registry
- ``report``     ``--print`` and the summary table (text or JSON)

    bake = load_bake(Path("bake.toml"))
    variants = resolve_variants(bake)               # UsageError listing every invalid combination
    results = run_bake(variants, [builder_a, builder_b], max_parallel=4)
"""

from llbgen.bake.expand import Assignment, expand
from llbgen.bake.model import BakeFile, load_bake, parse_bake
from llbgen.bake.overrides import Overrides, parse_sets
from llbgen.bake.run import VariantResult, run_bake
from llbgen.bake.variants import Variant, resolve_variants

__all__ = [
    "Assignment", "BakeFile", "Overrides", "Variant", "VariantResult", "expand", "load_bake", "parse_bake",
    "parse_sets", "resolve_variants", "run_bake",
]
