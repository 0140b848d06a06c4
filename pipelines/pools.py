"""Where pieces run: in this process (``engine: local``) or on Ray actors (``engine: ray``:
an embedded single-machine Ray by default, a cluster with ``address``).

Both pools take tasks while they have a free worker and hand back ``(task, result)`` pairs;
a Ray worker that dies (process killed, node lost) comes back as a ``lost`` result and is
replaced.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from err_stream.errors import UserError

from .worker import FrameCounter, PieceTask, SegmentWorker

log = logging.getLogger(__name__)


class InProcessPool:
    """One worker in the driver's own process: no Ray needed; pieces run one at a time."""

    name = "local"

    def __init__(self, threads: int | None = None) -> None:
        self.worker = SegmentWorker(threads)
        self.counter = FrameCounter()
        self.queue: list[PieceTask] = []
        self.size = 1
        self.description = f"in-process, 1 worker ({self.worker.name})"

    def free(self) -> int:
        return 0 if self.queue else 1

    def submit(self, task: PieceTask) -> str:
        self.queue.append(task)
        return self.worker.name

    def collect(self, timeout: float) -> list[tuple[PieceTask, dict[str, Any]]]:
        if not self.queue:
            return []
        task = self.queue.pop(0)
        return [(task, self.worker.run(task, self.counter))]

    def frames(self) -> dict[tuple[int, int], int]:
        """Frames restored per piece since the last call."""
        return self.counter.take()

    def busy(self) -> int:
        return len(self.queue)

    def close(self) -> None:
        pass


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(
            "engine 'ray' needs Ray: pip install 'err-stream[batch]' (or run on this machine alone with --engine local)"
        ) from None
    return ray


class RayPool:
    """Ray actors, each holding its models; one GPU each when the cluster has GPUs."""

    name = "ray"

    def __init__(self, address: str | None, workers: int | None, cpus_per_worker: float | None, gpus_per_worker: float | None) -> None:
        ray = import_ray()
        self.ray = ray
        self.owns_ray = False
        address = address or os.environ.get("RAY_ADDRESS") or None  # Ray's own way to name a cluster
        if not ray.is_initialized():
            if address:
                try:
                    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
                except Exception as e:
                    raise UserError(f"--address {address}: cannot join the Ray cluster ({e})") from None
            else:
                import torch

                # This machine only: its CPUs and GPUs, no dashboard. (Ray's own servers listen on
                # the machine's address, guarded by Ray's token authentication; Ray turns a
                # loopback node address into that address, so it cannot be confined to loopback.)
                ray.init(
                    num_cpus=os.cpu_count() or 1,
                    num_gpus=torch.cuda.device_count(),
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            self.owns_ray = True
        res = ray.cluster_resources()
        cpus, gpus = float(res.get("CPU", 1)), float(res.get("GPU", 0))
        if gpus_per_worker is None:
            gpus_per_worker = 1.0 if gpus >= 1 else 0.0
        if gpus_per_worker > gpus:
            raise UserError(f"gpus_per_worker {gpus_per_worker:g}: the Ray cluster has {gpus:g} GPUs")
        if workers is None:
            workers = max(1, int(gpus // gpus_per_worker)) if gpus_per_worker > 0 else 1
        if cpus_per_worker is None:
            cpus_per_worker = max(1.0, float(int(cpus // workers)))
        self.size = workers
        self.options = dict(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker)
        self.threads = int(cpus_per_worker)
        self.actor_class = ray.remote(SegmentWorker)
        self.counter = ray.remote(FrameCounter).options(num_cpus=0).remote()
        self.actors = [self._start() for _ in range(workers)]
        self.idle = list(self.actors)
        self.inflight: dict[Any, tuple[Any, PieceTask]] = {}
        where = f"Ray cluster at {address}" if address else "Ray on this machine"
        self.description = (
            f"{where}: {workers} worker{'s' if workers > 1 else ''} x ({cpus_per_worker:g} CPU, {gpus_per_worker:g} GPU); "
            f"cluster {cpus:g} CPUs, {gpus:g} GPUs"
        )

    def _start(self):
        return self.actor_class.options(**self.options).remote(self.threads, self.options["num_gpus"] > 0)

    def free(self) -> int:
        return len(self.idle)

    def busy(self) -> int:
        return len(self.inflight)

    def submit(self, task: PieceTask) -> str | None:
        actor = self.idle.pop(0)
        self.inflight[actor.run.remote(task, self.counter)] = (actor, task)
        return None  # which process runs it is known when it answers

    def collect(self, timeout: float) -> list[tuple[PieceTask, dict[str, Any]]]:
        if not self.inflight:
            return []
        ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            actor, task = self.inflight.pop(ref)
            try:
                result = self.ray.get(ref)
                self.idle.append(actor)
            except self.ray.exceptions.RayError as e:
                # The worker process or its node is gone: start another one in its place.
                log.warning("a worker was lost (%s); starting another", type(e).__name__)
                try:
                    self.ray.kill(actor, no_restart=True)
                except Exception:
                    pass
                replacement = self._start()
                self.actors[self.actors.index(actor)] = replacement
                self.idle.append(replacement)
                result = {"ok": False, "kind": "lost", "error": f"worker lost ({type(e).__name__})", "worker": None}
            out.append((task, result))
        return out

    def frames(self) -> dict[tuple[int, int], int]:
        """Frames restored per piece since the last call (empty if the counter is slow)."""
        try:
            return self.ray.get(self.counter.take.remote(), timeout=2)
        except Exception:
            return {}

    def close(self) -> None:
        for actor in [*self.actors, self.counter]:
            try:
                self.ray.kill(actor)
            except Exception:
                pass
        if self.owns_ray:
            self.ray.shutdown()
