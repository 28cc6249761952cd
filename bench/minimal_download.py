"""The least a verified, durable download can do, for `make bench` to compare install with.

Plain http.client, a 307 followed once, the body read into 8 reused 1 MiB buffers, written,
hashed with SHA-256 on a second thread, writeback started every 64 MiB, fsync at the end:
what `synapse install` does, minus start-up, state, retries and checks.

    python bench/minimal_download.py URL OUT
"""

from __future__ import annotations

import hashlib
import http.client
import os
import queue
import sys
import threading
from urllib.parse import urlsplit


def get(url: str) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
    return connection.getresponse()


def main(url: str, out: str) -> None:
    response = get(url)
    if response.status in (301, 302, 303, 307, 308):
        response = get(response.getheader("location") or "")
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    filled: queue.SimpleQueue[tuple[bytearray, memoryview] | None] = queue.SimpleQueue()
    for _ in range(8):
        free.put(bytearray(1 << 20))
    digest = hashlib.sha256()

    def hash_filled() -> None:
        while (item := filled.get()) is not None:
            digest.update(item[1])
            free.put(item[0])

    hasher = threading.Thread(target=hash_filled)
    hasher.start()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    written = flushed = 0
    while True:
        buffer = free.get()
        n = response.readinto(buffer)
        if not n:
            break
        view = memoryview(buffer)[:n]
        os.write(fd, view)
        filled.put((buffer, view))
        written += n
        if written - flushed >= 64 << 20:
            os.posix_fadvise(fd, flushed, written - flushed, os.POSIX_FADV_DONTNEED)
            flushed = written
    filled.put(None)
    hasher.join()
    os.fsync(fd)
    os.close(fd)
    print(digest.hexdigest())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
