"""A loopback S3 server for tests, benchmarks and the demo: moto in server mode (a dev dependency).

Nothing here is imported by the plugin itself."""

from __future__ import annotations

import socket
from typing import Any

TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "synapse-test",
    "AWS_SECRET_ACCESS_KEY": "synapse-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/synapse-test/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/synapse-test/credentials",
}
"""Moto accepts any keys; the files are pointed away so a developer's ~/.aws is never read."""


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LoopbackS3:
    """moto's ThreadedMotoServer on 127.0.0.1 and a boto3 client for it."""

    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request on stderr
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackS3:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def client(self) -> Any:
        """A plain boto3 client of the server (for the tests' own checks)."""
        return client_for(self.endpoint)


def client_for(endpoint: str) -> Any:
    """A plain boto3 client of a loopback server, with the plugin's checksum and addressing settings."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
        ),
    )
