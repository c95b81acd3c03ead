"""The recipe: stage objects that describe the PyTorch image and lower it to LLB.

One module per stage — ``os``, ``python``, ``jupyter``, ``torch`` (and the extra
pip packages), ``init`` — each a frozen value with its fields, ``depends_on()``
(what its cache key depends on) and ``steps()`` (every command it runs, as data;
``step.py`` lowers them). ``plan.layer_plan`` joins them into one image.

    from llbgen.spec import load_spec
    from stages import StageContext, layer_plan

    ctx = StageContext.create(load_spec(None, {"torch": "2.3.0", "cuda": "12.1"}))
    plan = layer_plan(ctx, merge_supported=True)
    plan.image            # the final State, image config included
    plan.digests()        # {"os": "sha256:…", "python": …, "jupyter": …, "torch": …, "init": …}
"""

from stages.context import StageContext
from stages.init import InitStage
from stages.jupyter import JupyterStage
from stages.os import OsStage
from stages.plan import Layer, LayerPlan, layer_plan
from stages.python import PythonStage
from stages.step import Step
from stages.torch import ExtrasStage, TorchStage

__all__ = [
    "ExtrasStage", "InitStage", "JupyterStage", "Layer", "LayerPlan", "OsStage", "PythonStage", "StageContext",
    "Step", "TorchStage", "layer_plan",
]
