"""Parsing and checking ``s3://BUCKET/PREFIX`` URLs and their options (no boto3 here)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from synapse_core.remotes import RemoteSettings

BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$")
OPTIONS = {"region", "profile", "checksum", "addressing_style", "part_size_mib", "parallel_parts"}
CHECKSUMS = ("sha256", "md5")


def bucket_and_prefix(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix")."""
    parsed = urlparse(url)
    return parsed.netloc, parsed.path.strip("/")


def url_problem(settings: RemoteSettings) -> str | None:
    """Why the settings cannot name an S3 remote, or None."""
    bucket, prefix = bucket_and_prefix(settings.url)
    if not BUCKET.match(bucket):
        return f"{settings.url}: {bucket!r} is not a bucket name (give s3://BUCKET/PREFIX)"
    if any(part in (".", "..") for part in prefix.split("/")) or "//" in prefix:
        return f"{settings.url}: the prefix {prefix!r} has an empty, '.' or '..' part"
    if settings.endpoint_url is not None:
        endpoint = urlparse(settings.endpoint_url)
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            return f"--endpoint-url {settings.endpoint_url!r} is not an http(s) URL"
        if endpoint.username or endpoint.password or endpoint.query:
            return "--endpoint-url holds no credentials or query; keys come from the environment or ~/.aws"
    unknown = sorted(set(settings.options) - OPTIONS)
    if unknown:
        return f"unknown option {unknown[0]!r} for an s3:// remote (options: {', '.join(sorted(OPTIONS))})"
    if settings.options.get("checksum", "sha256") not in CHECKSUMS:
        return "checksum is sha256 (x-amz-checksum-sha256, verified by the store) or md5 (Content-MD5, everywhere)"
    for key, low, high in (("part_size_mib", 5, 5 * 1024), ("parallel_parts", 1, 32)):
        value = settings.options.get(key)
        if value is not None and (not value.isdigit() or not low <= int(value) <= high):
            return f"{key} is a whole number from {low} to {high}"
    return None
