"""Synapse plugin: ``s3://BUCKET/PREFIX`` remotes on any S3-compatible object store.

Importing this module is cheap: boto3 is imported when a remote is first opened.
"""

from __future__ import annotations

from synapse_core.hookspecs import hookimpl
from synapse_core.remotes import Remote, RemoteKind, RemoteSettings


class S3RemoteKind(RemoteKind):
    """Opens ``s3://BUCKET/PREFIX`` (``--endpoint-url`` for stores other than AWS)."""

    name = "s3"
    schemes = ("s3",)

    def problem(self, settings: RemoteSettings) -> str | None:
        from synapse_s3.naming import url_problem

        return url_problem(settings)

    def open(self, settings: RemoteSettings) -> Remote:
        from synapse_s3.remote import S3Remote

        return S3Remote(settings)


@hookimpl
def synapse_remotes() -> list[RemoteKind]:
    """The s3:// remote."""
    return [S3RemoteKind()]
