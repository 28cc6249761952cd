"""Background jobs for long operations (import, install, update with sync)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import BaseModel, Field

from synapse_core.errors import SynapseError
from synapse_core.models import utc_now


class JobProgress(BaseModel):
    """Bytes done and expected (total is None while unknown), the recent speed and the time left."""

    done: int = 0
    total: int | None = 0
    bytes_per_second: float | None = None
    """Over the last few seconds; None until there is something to measure."""
    eta_seconds: float | None = None
    """None while the total or the speed is unknown."""
    current: str | None = None
    """The file being fetched, as the progress names it."""


class JobError(BaseModel):
    """Why a job failed."""

    code: str
    message: str


class Job(BaseModel):
    """A long operation running in the background."""

    id: str
    kind: str
    state: Literal["queued", "running", "succeeded", "failed"] = "queued"
    progress: JobProgress = Field(default_factory=JobProgress)
    result: Any = None
    error: JobError | None = None
    created_at: str = Field(default_factory=lambda: utc_now().isoformat())


class JobProgressReporter:
    """A :class:`synapse_core.progress.Progress` that feeds one job's progress."""

    SPEED_WINDOW = 3.0
    """Seconds of samples the speed is measured over."""

    def __init__(self, job: Job, lock: threading.Lock, clock: Callable[[], float] = time.monotonic) -> None:
        self.job = job
        self.lock = lock
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque()

    def add_total(self, label: str, total: int | None) -> None:
        with self.lock:
            current = self.job.progress.total
            self.job.progress.total = None if total is None or current is None else current + total
            self.job.progress.current = label

    def advance(self, n: int) -> None:
        with self.lock:
            progress = self.job.progress
            progress.done += n
            now = self.clock()
            self.samples.append((now, progress.done))
            while len(self.samples) > 2 and now - self.samples[0][0] > self.SPEED_WINDOW:
                self.samples.popleft()
            first_time, first_done = self.samples[0]
            if now - first_time > 0.05:
                progress.bytes_per_second = (progress.done - first_done) / (now - first_time)
            speed, total = progress.bytes_per_second, progress.total
            if speed and total is not None:
                progress.eta_seconds = max(0.0, (total - progress.done) / speed)

    def finish(self, label: str) -> None:
        """Nothing to do: the job's state changes when its function returns."""


class JobManager:
    """Runs jobs on a small thread pool and keeps their outcome; failures are never lost."""

    def __init__(self, workers: int = 2) -> None:
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synapse-job")

    def submit(self, kind: str, work: Callable[[JobProgressReporter], BaseModel]) -> Job:
        """Queue ``work``; it receives a progress reporter for this job."""
        job = Job(id=uuid.uuid4().hex[:16], kind=kind)
        with self.lock:
            self.jobs[job.id] = job
        self.pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[JobProgressReporter], BaseModel]) -> None:
        job.state = "running"
        try:
            result = work(JobProgressReporter(job, self.lock))
            job.result = result.model_dump(mode="json")
            job.state = "succeeded"
        except SynapseError as exc:
            job.error, job.state = JobError(code=exc.code, message=exc.message), "failed"
        except Exception as exc:  # reported on the job, never lost
            job.error, job.state = JobError(code="internal", message=f"{type(exc).__name__}: {exc}"), "failed"

    def get(self, job_id: str) -> Job | None:
        """A job by id."""
        with self.lock:
            return self.jobs.get(job_id)

    def recent(self, limit: int = 50) -> list[Job]:
        """The newest jobs first."""
        with self.lock:
            return list(reversed(self.jobs.values()))[:limit]

    def shutdown(self) -> None:
        """Wait for running jobs and stop the pool."""
        self.pool.shutdown(wait=True)
