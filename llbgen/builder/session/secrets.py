"""Secrets.GetSecret: hands build secrets (``--mount=type=secret``) to the daemon.

Values are never logged or put in error messages; only ids are.
Unknown ids get NOT_FOUND, which the daemon reports as "secret X not found"
(or skips, for optional secret mounts).
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from llbgen._proto.session import secrets_pb2, secrets_pb2_grpc


class SecretsServicer(secrets_pb2_grpc.SecretsServicer):
    def __init__(self, secrets: Mapping[str, bytes]):
        self._secrets = dict(secrets)

    def GetSecret(self, request: secrets_pb2.GetSecretRequest, context: grpc.ServicerContext) -> secrets_pb2.GetSecretResponse:
        value = self._secrets.get(request.ID)
        if value is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"secret {request.ID} not found")
        return secrets_pb2.GetSecretResponse(data=value)

    def __repr__(self) -> str:
        return f"SecretsServicer(ids={sorted(self._secrets)})"
