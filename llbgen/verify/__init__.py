"""``llbgen verify IMAGE``: the seed's §6 checks, automated against a running container.

- ``report``     the table of checks (check, result, detail) and the exit code
- ``container``  the container under test, with docker-py (published ports, exec, removal)
- ``ssh``        the real OpenSSH client: key login and banner, commands, password attempts
- ``http``       JupyterLab and TensorBoard over HTTP (no redirects followed)
- ``expect``     what locale, Chinese output, the timezone and PATH must look like
- ``versions``   the ``io.llbgen.spec`` label against python/torch/... inside, CUDA with --gpus
- ``runner``     the order of it all: ``verify(VerifyOptions) -> Report``
"""

from llbgen.verify.report import CheckResult, Report, Status
from llbgen.verify.runner import KeptContainer, VerifyOptions, verify

__all__ = ["CheckResult", "KeptContainer", "Report", "Status", "VerifyOptions", "verify"]
