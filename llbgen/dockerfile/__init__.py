"""The second lowering of the stages: a Dockerfile build context for ``docker buildx build``.

The same stage objects and ``Step`` values ``llbgen build`` lowers to LLB are lowered here
to Dockerfile text (never by decompiling LLB), so the two builds cannot drift.

- ``text``         quoting, heredocs, continued instructions
- ``args``         the ARGs (versions, sources) with the resolved values as defaults
- ``run``          one ``Step`` -> ``RUN --mount=...`` + ``COPY <<EOF`` (and its download stage)
- ``config``       the image config of ``stages.plan.with_image_config`` -> ENV ... HEALTHCHECK
- ``layout``       the stages, the per-stage layers and the final image (``render_dockerfile``)
- ``layers_tool``  ``llbgen-layers.py``: DiffOp's stand-in, run inside the build
- ``buildscript``  ``build.sh`` (``docker buildx build`` with the resolved values)
- ``readme``       ``README.md`` in English or Chinese
- ``export``       the directory: ``export_dockerfile(resolved, out_dir, ...)``

    from llbgen.spec import load_spec
    from llbgen.dockerfile import export_dockerfile

    export_dockerfile(load_spec(None, {"torch": "2.3.0", "cuda": "12.1"}), Path("out"), lang="zh")
"""

from llbgen.dockerfile.export import Export, export_dockerfile, render_export, write_export
from llbgen.dockerfile.layout import Dockerfile, render_dockerfile

__all__ = ["Dockerfile", "Export", "export_dockerfile", "render_dockerfile", "render_export", "write_export"]
