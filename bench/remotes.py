"""`make bench --only remotes`: push and pull of a big blob to an S3 bucket on loopback.

The server is moto in server mode (ThreadedMotoServer) in a process of its own: in this one,
its memory would count in every child's peak RSS (Linux carries the parent's high-water mark
across fork and exec). The baselines are boto3's own managed transfers of the same bytes,
``upload_file`` and ``download_file``, each in a fresh Python, with the same client settings
as the plugin (checksums only where required, path-style addressing), measured in the same
run and taking turns with what they are compared with. (The baseline's read timeout is long:
moto answers CompleteMultipartUpload of 1 GiB only after joining the parts, and a retry of it fails.)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

Timed = Callable[..., tuple[float, int]]

BUCKET = "bench"
SERVER = """
import sys
from synapse_s3.testing import LoopbackS3
with LoopbackS3() as s3:
    client = s3.client()
    client.create_bucket(Bucket=sys.argv[1])
    print(s3.endpoint, flush=True)
    for line in sys.stdin:
        what, key = line.split()
        if what == "forget":  # the object gone, and any multipart upload of it
            client.delete_object(Bucket=sys.argv[1], Key=key)
            for upload in client.list_multipart_uploads(Bucket=sys.argv[1], Prefix=key).get("Uploads", []):
                client.abort_multipart_upload(Bucket=sys.argv[1], Key=upload["Key"], UploadId=upload["UploadId"])
            print("ok", flush=True)
        else:
            print(client.head_object(Bucket=sys.argv[1], Key=key)["Metadata"].get("sha256"), flush=True)
"""
"""moto, and the bench's own requests to it, in a process of its own (see above), asked on stdin."""
PLAIN = """
import sys, boto3
from botocore.config import Config
endpoint, mode, bucket, key, path = sys.argv[1:]
client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(
    request_checksum_calculation="when_required", response_checksum_validation="when_required",
    s3={"addressing_style": "path"}, read_timeout=900))
if mode == "upload":
    client.upload_file(path, bucket, key)
else:
    client.download_file(bucket, key, path)
"""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _ask(server: subprocess.Popen[str], what: str, key: str) -> str:
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(f"{what} {key}\n")
    server.stdin.flush()
    return server.stdout.readline().strip()


def bench_remotes(
    runs: int,
    size: int,
    work: Path,
    synapse: str,
    timed: Timed,
    best_interleaved: Callable[..., dict[str, tuple[float, int]]],
    report: Callable[..., bool],
    big_file: Callable[[int], Path],
) -> bool:
    from synapse_s3.testing import TEST_CREDENTIALS

    try:
        import moto  # noqa: F401
    except ImportError:
        raise SystemExit("the remotes figure needs moto[server] in .venv-bench: make .venv-bench/.installed") from None

    src = big_file(size)
    sha256 = _sha256(src)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SYNAPSE_"))}
    env.update(TEST_CREDENTIALS)
    blob_key = f"synapse/blobs/sha256/{sha256[:2]}/{sha256}"
    plain_key = "plain/big.bin"
    out = work / "download.bin"

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, BUCKET], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()
        remote = ["remote", "add", "team", f"s3://{BUCKET}/synapse", "--endpoint-url", endpoint]

        def store(name: str) -> dict[str, str]:
            root = work / name
            shutil.rmtree(root, ignore_errors=True)
            there = {**env, "SYNAPSE_ROOT": str(root)}
            timed([synapse, "store", "init"], there)
            timed([synapse, *remote], there)
            return there

        here = store("remote-push")
        timed([synapse, "import", str(src), "--link", "--kind", "checkpoint", "--name", "Big"], here)

        def push() -> tuple[float, int]:
            _ask(server, "forget", blob_key)
            return timed([synapse, "push", "Big"], here)

        def upload() -> tuple[float, int]:
            _ask(server, "forget", plain_key)
            return timed([sys.executable, "-c", PLAIN, endpoint, "upload", BUCKET, plain_key, str(src)], env)

        sent = best_interleaved(runs, upload=upload, push=push)
        if _ask(server, "head", blob_key) != sha256:
            raise SystemExit("bench: the pushed blob is not on the bucket with its sha256")

        def pull() -> tuple[float, int]:
            there = store("remote-pull")
            return timed([synapse, "pull", "Big"], there)

        def download() -> tuple[float, int]:
            out.unlink(missing_ok=True)
            return timed([sys.executable, "-c", PLAIN, endpoint, "download", BUCKET, plain_key, str(out)], env)

        def download_sync() -> tuple[float, int]:
            out.unlink(missing_ok=True)
            script = PLAIN + "import os\nfd = os.open(path, os.O_RDONLY)\nos.fsync(fd)\n"
            return timed([sys.executable, "-c", script, endpoint, "download", BUCKET, plain_key, str(out)], env)

        got = best_interleaved(runs, download=download, download_sync=download_sync, pull=pull)
        if _sha256(out) != sha256:
            raise SystemExit("bench: download_file did not bring the same bytes")
    finally:
        server.communicate("")  # stdin closed: the server stops
    out.unlink(missing_ok=True)
    shutil.rmtree(work / "remote-pull", ignore_errors=True)
    shutil.rmtree(work / "remote-push", ignore_errors=True)

    label = f"{size / 1024**3:.2f} GiB"
    (push_time, push_rss), (plain_up, _) = sent["push"], sent["upload"]
    (pull_time, pull_rss), (plain_down, _), (plain_sync, _) = got["pull"], got["download"], got["download_sync"]
    ok = report(f"push {label} to loopback S3", push_time, plain_up, 1.3, "boto3 upload_file of the same bytes")
    ok &= report(
        f"pull {label} from loopback S3", pull_time, plain_sync, 1.3, "boto3 download_file + fsync (same durability)"
    )
    report(f"pull {label} from loopback S3", pull_time, plain_down, 1.3, "plain boto3 download_file (no fsync)")
    for what, rss_kib in (("push", push_rss), ("pull", pull_rss)):
        rss = rss_kib / 1024
        print(f"{'peak RSS during ' + what:<34} {rss:5.1f} MB (target <= 150 MB) {'ok' if rss <= 150 else 'OVER'}")
        ok &= rss <= 150
    return ok
