"""SageMaker real-time endpoints: ``InvokeEndpoint`` (``POST
/endpoints/{model}/invocations`` on ``runtime.sagemaker.<region>.amazonaws.com``),
signed with SigV4 by botocore from the default credential chain, per request.

The plan's ``inference`` is the runtime's base URL (an ``AWS_ENDPOINT_URL``-style
endpoint such as moto's server works the same); ``protocol.model`` is the endpoint's
name and ``protocol.region`` (else ``AWS_REGION``) the region signed for. The body is
built and the answer read as for ``http`` (a Jinja2 template, a JMESPath expression).
``InvokeEndpointWithResponseStream`` is not spoken yet: ``stream`` is ignored here.
"""

from __future__ import annotations

import os
from typing import Any

from aidrill.load.protocols.http_json import TemplatedHttp


class NoCredentialsError(ValueError):
    pass


class SageMakerRuntime(TemplatedHttp):
    names = ("sagemaker",)
    default_path = "/endpoints/{model}/invocations"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.region = (
            settings.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        self._credentials: Any = None

    def headers(self, url: str, body: bytes) -> dict[str, str]:
        """SigV4 headers for one request (botocore's signer, service ``sagemaker``)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._credentials is None:
            import botocore.session

            self._credentials = botocore.session.get_session().get_credentials()
            if self._credentials is None:
                raise NoCredentialsError(
                    "no AWS credentials were found for the sagemaker protocol (boto3's "
                    "chain: environment, profile, instance role)"
                )
        request = AWSRequest("POST", url, data=body, headers={"Content-Type": self.content_type})
        SigV4Auth(self._credentials.get_frozen_credentials(), "sagemaker", self.region).add_auth(
            request
        )
        return {k: str(v) for k, v in request.headers.items() if k != "Content-Type"}


PROTOCOLS = (SageMakerRuntime,)
