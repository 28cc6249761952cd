"""Background jobs for long operations (import, install, update with sync)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import BaseModel, Field

from synapse_core.errors import SynapseError
from synapse_core.models import utc_now


class JobProgress(BaseModel):
    """Bytes done and expected (total is None while unknown)."""

    done: int = 0
    total: int | None = 0


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

    def __init__(self, job: Job, lock: threading.Lock) -> None:
        self.job = job
        self.lock = lock

    def add_total(self, label: str, total: int | None) -> None:
        with self.lock:
            current = self.job.progress.total
            self.job.progress.total = None if total is None or current is None else current + total

    def advance(self, n: int) -> None:
        with self.lock:
            self.job.progress.done += n

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

    def shutdown(self) -> None:
        """Wait for running jobs and stop the pool."""
        self.pool.shutdown(wait=True)
