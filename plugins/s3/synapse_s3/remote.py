"""An S3-compatible bucket as a Synapse remote, through boto3.

Why boto3: it is the reference client of the S3 API, kept by AWS, and every S3-compatible
store (R2, B2, Ceph, Garage, MinIO) tests against it; its credential chain (environment,
``~/.aws`` profiles, SSO, instance roles) is the one users already have set up. Since 1.36
it adds CRC checksums to every request by default, which several non-AWS stores reject, so
it is configured to send a checksum only where an operation requires one
(``request_checksum_calculation="when_required"``); Synapse sends its own: the part's
``x-amz-checksum-sha256`` (option ``checksum=sha256``, the default) or Content-MD5
(``checksum=md5``, for stores that know no other).

Uploads: one PUT below the part size; above it a multipart upload whose parts go in
parallel. An interrupted upload is resumed: its upload id is found again by listing the
multipart uploads of the key, and each part already there is kept only when its checksum
(or ETag) matches the bytes we would send. The whole file is hashed while it is read, and
after the upload a HEAD must show the size and our ``sha256`` metadata.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synapse_core.errors import IntegrityError, NotFound, SynapseError
from synapse_core.names import is_sha256
from synapse_core.remotes import (
    BLOB_PREFIX,
    MAX_RECORD_BYTES,
    Progress,
    Remote,
    RemoteObject,
    RemoteSettings,
    blob_key,
)
from synapse_core.sources import DownloadSink
from synapse_s3.naming import bucket_and_prefix

MiB = 1024 * 1024
DEFAULT_PART = 8 * MiB
DEFAULT_PARALLEL = 4
MAX_PARTS = 10_000
MISSING = ("404", "NoSuchKey", "NotFound")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class S3Remote(Remote):
    """A bucket (and prefix) on an S3-compatible store."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        self.bucket, self.prefix = bucket_and_prefix(settings.url)
        options = settings.options
        self.checksum = options.get("checksum", "sha256")
        self.part_size = int(options.get("part_size_mib", 0)) * MiB or DEFAULT_PART
        self.parallel = int(options.get("parallel_parts", 0)) or DEFAULT_PARALLEL
        self._client: Any = None
        self._lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The boto3 client, made on first use (credentials from boto3's standard chain)."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                opts = self.settings.options
                session = boto3.session.Session(profile_name=opts.get("profile"))
                style = opts.get("addressing_style") or ("path" if self.settings.endpoint_url else "auto")
                config = Config(
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    retries={"mode": "standard", "max_attempts": 4},
                    max_pool_connections=max(10, self.parallel * 2),
                    connect_timeout=10,
                    read_timeout=60,
                    # the bytes are guarded by our own checksums (a part's sha256, or Content-MD5), so the
                    # signature need not hash every body again (boto3 skips it over https when one is sent)
                    s3={"addressing_style": style, "payload_signing_enabled": False},
                )
                try:
                    self._client = session.client(
                        "s3",
                        endpoint_url=self.settings.endpoint_url,
                        region_name=opts.get("region") or session.region_name or "us-east-1",
                        config=config,
                    )
                except Exception as exc:
                    raise self._error(exc, "connecting") from None
            return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, exc: BaseException, what: str) -> SynapseError:
        """One line for a failure of boto3 (never a secret: no URL with a signature, no key)."""
        from botocore import exceptions as bx

        label = f"remote '{self.settings.name}' (s3://{self.bucket})"
        if isinstance(exc, SynapseError):
            return exc
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return SynapseError(
                f"{label}: no credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "or a profile in ~/.aws (--profile)"
            )
        if isinstance(exc, bx.ProfileNotFound):
            return SynapseError(f"{label}: the profile {self.settings.options.get('profile')!r} is not in ~/.aws")
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ConnectionClosedError):
            where = self.settings.endpoint_url or "AWS S3"
            return SynapseError(f"{label}: cannot reach {where} while {what}; check the network or --endpoint-url")
        if isinstance(exc, bx.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                return NotFound(f"{label}: the bucket {self.bucket!r} does not exist; create it or fix the URL")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403") or status == 403:
                return SynapseError(f"{label}: the store refused the credentials while {what} ({code or status})")
            message = str(error.get("Message", ""))[:200]
            return SynapseError(f"{label}: {code or status} while {what}" + (f": {message}" if message else ""))
        if isinstance(exc, bx.BotoCoreError | OSError):
            return SynapseError(f"{label}: {type(exc).__name__} while {what}: {str(exc)[:200]}")
        return SynapseError(f"{label}: {type(exc).__name__} while {what}")

    @staticmethod
    def _missing(exc: BaseException) -> bool:
        from botocore.exceptions import ClientError

        if not isinstance(exc, ClientError):
            return False
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return code in MISSING or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404

    # -- the contract --------------------------------------------------------------------

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            if self._missing(exc):
                raise NotFound(
                    f"remote '{self.settings.name}' (s3://{self.bucket}): the bucket {self.bucket!r} does not exist; "
                    "create it or fix the URL"
                ) from None
            raise self._error(exc, "checking the bucket") from None

    def head(self, key: str) -> RemoteObject | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if self._missing(exc):
                return None
            raise self._error(exc, f"asking for {key}") from None
        sha256 = answer.get("Metadata", {}).get("sha256")
        return RemoteObject(
            key=key, size=int(answer["ContentLength"]), sha256=sha256 if isinstance(sha256, str) else None
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentMD5=_b64(hashlib.md5(data).digest())
            )
        except Exception as exc:
            raise self._error(exc, f"writing {key}") from None

    def get_bytes(self, key: str, limit: int = MAX_RECORD_BYTES) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            if int(answer.get("ContentLength", 0)) > limit:
                raise SynapseError(f"remote '{self.settings.name}': {key} is larger than {limit} bytes; refused")
            data: bytes = answer["Body"].read(limit + 1)
        except Exception as exc:
            if self._missing(exc):
                return None
            raise self._error(exc, f"reading {key}") from None
        if len(data) > limit:
            raise SynapseError(f"remote '{self.settings.name}': {key} is larger than {limit} bytes; refused")
        return data

    def download(self, key: str, sink: DownloadSink) -> None:
        found = self.head(key)
        if found is None:
            raise NotFound(f"remote '{self.settings.name}' has no {key}")
        offset = sink.offset
        if offset > found.size:
            sink.restart()
            offset = 0
        sink.begin(found.size)
        if offset == found.size:
            return  # everything was kept: the sink checks it
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if offset:
            args["Range"] = f"bytes={offset}-"
        try:
            body = self.client.get_object(**args)["Body"]
            sink.receive(body.readinto)
        except SynapseError:
            raise
        except Exception as exc:
            raise self._error(exc, f"downloading {key}") from None

    def list(self, prefix: str) -> Iterator[RemoteObject]:
        start = self._key(prefix)
        cut = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
            for page in pages:
                for item in page.get("Contents", []):
                    yield RemoteObject(key=str(item["Key"])[cut:], size=int(item["Size"]))
        except Exception as exc:
            raise self._error(exc, f"listing {prefix}") from None

    def abandoned_uploads(self, idle_seconds: float, remove: bool) -> Sequence[RemoteObject]:
        cut = len(self.prefix) + 1 if self.prefix else 0
        now = datetime.now(UTC)
        found = []
        try:
            pages = self.client.get_paginator("list_multipart_uploads")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self._key(BLOB_PREFIX)):
                for upload in page.get("Uploads", []):
                    full = str(upload.get("Key", ""))
                    key = full[cut:]
                    sha256 = key.rsplit("/", 1)[-1]
                    if not full.startswith(self._key(BLOB_PREFIX)) or not is_sha256(sha256) or key != blob_key(sha256):
                        continue  # not an upload of a blob this plugin began: never touched
                    parts = [
                        part
                        for part_page in self.client.get_paginator("list_parts").paginate(
                            Bucket=self.bucket, Key=full, UploadId=upload["UploadId"]
                        )
                        for part in part_page.get("Parts", [])
                    ]
                    times = [t for t in [upload.get("Initiated"), *(p.get("LastModified") for p in parts)] if t]
                    if not times or (now - max(times)).total_seconds() < idle_seconds:
                        continue  # written to lately (or of unknown age): a push may own it
                    if remove:
                        try:
                            self.client.abort_multipart_upload(
                                Bucket=self.bucket, Key=full, UploadId=upload["UploadId"]
                            )
                        except Exception as exc:
                            if self._missing(exc) or "NoSuchUpload" in str(exc):
                                continue  # completed or aborted meanwhile
                            raise
                    found.append(RemoteObject(key=key, size=sum(int(p.get("Size", 0)) for p in parts)))
        except Exception as exc:
            raise self._error(exc, "listing unfinished uploads") from None
        return found

    def upload_file(self, key: str, path: Path, sha256: str, size: int, progress: Progress) -> None:
        try:
            if size <= self.part_size:
                self._put_whole(key, path, sha256, size, progress)
            else:
                self._put_parts(key, path, sha256, size, progress)
        except (SynapseError, OSError) as exc:
            if isinstance(exc, OSError):
                raise SynapseError(f"cannot read {path}: {exc.strerror or exc}") from None
            raise
        except Exception as exc:
            raise self._error(exc, f"uploading {key}") from None
        found = self.head(key)
        if found is None or found.size != size or found.sha256 != sha256:
            what = "is missing" if found is None else f"has {found.size} bytes and sha256 {found.sha256!r}"
            raise IntegrityError(f"remote '{self.settings.name}': {key} {what} after its upload; push again")

    def _checksum_args(self, data: bytes | memoryview) -> dict[str, str]:
        if self.checksum == "sha256":
            return {"ChecksumSHA256": _b64(hashlib.sha256(data).digest())}
        return {"ContentMD5": _b64(hashlib.md5(data).digest())}

    def _put_whole(self, key: str, path: Path, sha256: str, size: int, progress: Progress) -> None:
        data = path.read_bytes()
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"{path} no longer hashes to {sha256[:12]}…; nothing was uploaded")
        args = (
            {"ChecksumSHA256": _b64(bytes.fromhex(sha256))} if self.checksum == "sha256" else self._checksum_args(data)
        )
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, Metadata={"sha256": sha256}, **args)
        progress(size)

    def _put_parts(self, key: str, path: Path, sha256: str, size: int, progress: Progress) -> None:
        full = self._key(key)
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        count = -(-size // part_size)
        upload_id, kept = self._resumable(full)
        if upload_id is None:
            extra = {"ChecksumAlgorithm": "SHA256"} if self.checksum == "sha256" else {}
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=full, Metadata={"sha256": sha256}, **extra
            )["UploadId"]
        whole = hashlib.sha256()
        done: dict[int, dict[str, str]] = {}
        slots = threading.BoundedSemaphore(self.parallel + 1)
        futures: list[Future[None]] = []

        def send(number: int, data: bytes) -> None:
            try:
                args = self._checksum_args(data)
                old = kept.get(number)
                if old is not None and _same_part(old, data, args):
                    done[number] = _part_entry(number, old)
                else:
                    answer = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=full,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ContentLength=len(data),
                        **args,
                    )
                    done[number] = _part_entry(number, {**args, "ETag": answer["ETag"]})
                progress(len(data))
            finally:
                slots.release()

        with open(path, "rb", buffering=0) as handle, ThreadPoolExecutor(max_workers=self.parallel) as pool:
            fd = handle.fileno()
            for number in range(1, count + 1):
                slots.acquire()
                data = os.pread(fd, part_size, (number - 1) * part_size)
                whole.update(data)
                futures.append(pool.submit(send, number, data))
                failed = [f for f in futures if f.done() and f.exception() is not None]
                if failed:
                    break
            for future in futures:
                future.result()  # the first failure, as boto3 raised it (its retries are spent)
        if whole.hexdigest() != sha256 or len(done) != count:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            raise IntegrityError(f"{path} no longer hashes to {sha256[:12]}…; the upload was cancelled")
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=full,
            UploadId=upload_id,
            MultipartUpload={"Parts": [done[n] for n in sorted(done)]},
        )

    def _resumable(self, full: str) -> tuple[str | None, dict[int, dict[str, Any]]]:
        """An earlier multipart upload of this key and its parts (the newest one, if several)."""
        answer = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=full)
        uploads = [u for u in answer.get("Uploads", []) if u.get("Key") == full]
        if not uploads:
            return None, {}
        upload = max(uploads, key=lambda u: u.get("Initiated") or 0)
        parts: dict[int, dict[str, Any]] = {}
        marker = 0
        while True:
            page = self.client.list_parts(
                Bucket=self.bucket, Key=full, UploadId=upload["UploadId"], PartNumberMarker=marker
            )
            for part in page.get("Parts", []):
                parts[int(part["PartNumber"])] = part
            if not page.get("IsTruncated"):
                break
            marker = int(page["NextPartNumberMarker"])
        return str(upload["UploadId"]), parts


def _same_part(old: dict[str, Any], data: bytes, args: dict[str, str]) -> bool:
    """Whether a part already uploaded holds exactly ``data`` (by its checksum, else its ETag)."""
    if int(old.get("Size", -1)) != len(data):
        return False
    if old.get("ChecksumSHA256") and "ChecksumSHA256" in args:
        return bool(old["ChecksumSHA256"] == args["ChecksumSHA256"])
    return str(old.get("ETag", "")).strip('"') == hashlib.md5(data).hexdigest()


def _part_entry(number: int, found: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"PartNumber": number, "ETag": found["ETag"]}
    if found.get("ChecksumSHA256"):
        entry["ChecksumSHA256"] = found["ChecksumSHA256"]
    return entry
