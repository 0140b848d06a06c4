"""Batch jobs: YAML job files, keyframe segments restored in parallel on Ray, a resumable
SQLite manifest. ``err-stream batch JOB.yaml`` is the front end.

* :mod:`pipelines.job`: the job file format, validated before anything runs.
* :mod:`pipelines.segments`: keyframe cut points, segment files, joining by stream copy.
* :mod:`pipelines.manifest`: the SQLite record of inputs and segments in the output folder.
* :mod:`pipelines.runner`: the driver (scheduling, retries, resume, report) and its workers.
* ``pipelines/jobs/``: job files for common uses.
"""

from __future__ import annotations

from pathlib import Path

JOBS_DIR = Path(__file__).parent / "jobs"


def shipped_jobs() -> list[Path]:
    """The job files that ship with err-stream (templates for common uses)."""
    return sorted(JOBS_DIR.glob("*.yaml"))
