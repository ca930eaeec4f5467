"""Training and evaluation pipelines: small batch jobs that checkpoint to the artifact store.

A job runs in one region, takes a step every quarter second and writes a checkpoint
(``checkpoints/<job>/<ms>.npz``) to its region's artifact store every few seconds.
When its region fails, the job dies with it; the scheduler resumes it in the other
region from the newest checkpoint replicated there, and records which one.

Each job publishes its progress as a training job does on its status page: ``GET
/jobs`` answers, per job, the region it runs in, whether it runs, its step, and the
step it last resumed from (with a count of resumes). No times: an observer outside the
lab times what it sees itself.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aidrill.lab._http import JsonHandler, QuietServer
from aidrill.lab._records import PipelineSnapshot
from aidrill.lab.data._storage import RegionStore, StorageError
from aidrill.lab.serving._model import CLASSES, FEATURES, make_dataset

Record = Callable[..., None]
JOBS = ("training", "evaluation")
_STEP = 0.25
_RESUME_DELAY = 1.0


def checkpoint_prefix(job: str) -> str:
    return f"checkpoints/{job}/"


@dataclass
class JobState:
    name: str
    region: str
    step: int = 0
    weights: np.ndarray = field(default_factory=lambda: np.zeros((FEATURES + 1, CLASSES)))
    correct: float = 0.0
    running: bool = False
    last_step_at: float | None = None
    resumed_from: dict[str, Any] | None = None
    resumes: int = 0
    generation: int = 0


class Pipelines:
    def __init__(
        self,
        primary: str,
        dr: str,
        stores: dict[str, RegionStore],
        checkpoint_interval: float,
        record: Record,
    ) -> None:
        self.primary, self.dr = primary, dr
        self.stores = stores
        self.checkpoint_interval = checkpoint_interval
        self.record = record
        self.lock = threading.Lock()
        self.failed: set[str] = set()
        self.jobs = {name: JobState(name, primary) for name in JOBS}
        self._features, self._labels = make_dataset(2000, seed=7)
        self._stopping = threading.Event()
        self.server = QuietServer(("127.0.0.1", 0), _status_handler(self))
        self.port = self.server.server_address[1]

    def start(self) -> None:
        for job in self.jobs.values():
            # A first checkpoint at once, so a failure at any moment has one to resume.
            self._checkpoint(job, self.stores[self.primary])
            self._launch(job)
        threading.Thread(target=self._schedule, daemon=True, name="pipelines").start()
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name="pipeline-status",
        ).start()

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()

    def published(self) -> dict[str, Any]:
        """What the jobs publish about themselves: progress, never the lab's times."""
        with self.lock:
            return {
                name: {
                    "region": job.region,
                    "running": job.running,
                    "step": job.step,
                    "resumed_from_step": (job.resumed_from or {}).get("step"),
                    "resumes": job.resumes,
                }
                for name, job in self.jobs.items()
            }

    def snapshot(self) -> dict[str, PipelineSnapshot]:
        with self.lock:
            return {
                name: {
                    "region": job.region,
                    "running": job.running,
                    "step": job.step,
                    "last_step_at": job.last_step_at,
                    "resumed_from": job.resumed_from,
                }
                for name, job in self.jobs.items()
            }

    def fail_region(self, region: str) -> None:
        with self.lock:
            self.failed.add(region)
            stopped = [job for job in self.jobs.values() if job.region == region and job.running]
            for job in stopped:
                job.running = False
                job.generation += 1
        for job in stopped:
            self.record("pipeline_stopped", job=job.name, region=region, step=job.step)

    def restore_region(self, region: str) -> None:
        """The region is back: jobs that ran there before go home (failback)."""
        with self.lock:
            self.failed.discard(region)
        self._reschedule()

    def _fail_back(self) -> None:
        with self.lock:
            if self.primary in self.failed:
                return
            movers = [j for j in self.jobs.values() if j.region != self.primary and j.running]
            for job in movers:
                job.running = False
                job.generation += 1
        for job in movers:
            try:
                self._checkpoint(job, self.stores[self.primary])
            except StorageError:
                self._launch(job)  # stays where it ran; the next round tries again
                continue
            self._resume(job, self.primary)

    def is_nominal(self) -> bool:
        with self.lock:
            return all(j.running and j.region == self.primary for j in self.jobs.values())

    # -- the jobs ------------------------------------------------------------------------
    def _launch(self, job: JobState) -> None:
        with self.lock:
            job.running = True
            job.generation += 1
            generation = job.generation
        threading.Thread(
            target=self._run, args=(job, generation), daemon=True, name=f"job-{job.name}"
        ).start()

    def _run(self, job: JobState, generation: int) -> None:
        last_checkpoint = time.monotonic()
        while not self._stopping.wait(_STEP):
            with self.lock:
                if job.generation != generation or not job.running:
                    return
                self._advance(job)
            if time.monotonic() - last_checkpoint >= self.checkpoint_interval:
                last_checkpoint = time.monotonic()
                try:
                    self._checkpoint(job, self.stores[job.region])
                except StorageError:
                    continue

    def _advance(self, job: JobState) -> None:
        batch = slice((job.step * 50) % 2000, (job.step * 50) % 2000 + 50)
        x = np.hstack([self._features[batch], np.ones((50, 1))])
        y = self._labels[batch]
        logits = x @ job.weights
        if job.name == "training":
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            job.weights -= 0.1 * x.T @ (probs - np.eye(CLASSES)[y]) / len(y)
        else:
            job.correct += float(np.sum(np.argmax(logits, axis=1) == y))
        job.step += 1
        job.last_step_at = time.time()

    def _checkpoint(self, job: JobState, store: RegionStore) -> None:
        with self.lock:
            step, weights, correct = job.step, job.weights.copy(), job.correct
            as_of = job.last_step_at or time.time()
        buffer = io.BytesIO()
        np.savez(buffer, weights=weights, step=step, correct=correct)
        key = f"{checkpoint_prefix(job.name)}{int(as_of * 1000):015d}.npz"
        store.put(key, buffer.getvalue(), {"created-at": f"{as_of:.3f}", "step": str(step)})

    def _schedule(self) -> None:
        while not self._stopping.wait(_RESUME_DELAY):
            self._reschedule()

    def _reschedule(self) -> None:
        """Resume every stopped job: where it ran if that region is up again, else in
        the other region; then bring jobs running away from home back."""
        with self.lock:
            stopped = [j for j in self.jobs.values() if not j.running]
        for job in stopped:
            other = self.dr if job.region == self.primary else self.primary
            target = job.region if job.region not in self.failed else other
            if target not in self.failed:
                self._resume(job, target)
        self._fail_back()

    def _resume(self, job: JobState, region: str) -> None:
        store = self.stores[region]
        try:
            newest = store.newest(checkpoint_prefix(job.name))
            if newest is None:
                self.record("pipeline_resume_failed", job=job.name, region=region)
                return
            body, metadata = store.get(newest[0])
        except StorageError as exc:
            self.record("pipeline_resume_failed", job=job.name, region=region, error=str(exc))
            return
        with np.load(io.BytesIO(body)) as data:
            weights, step, correct = data["weights"], int(data["step"]), float(data["correct"])
        created = float(metadata["created-at"])
        with self.lock:
            if job.running:
                return  # resumed elsewhere meanwhile
            job.region = region
            job.weights, job.step, job.correct = weights, step, correct
            job.resumed_from = {"key": newest[0], "created_at": created, "step": step}
            job.resumes += 1
        self.record(
            "pipeline_resumed",
            job=job.name,
            region=region,
            checkpoint=newest[0],
            checkpoint_created_at=created,
            step=step,
        )
        self._launch(job)


def _status_handler(pipelines: Pipelines) -> type[JsonHandler]:
    class StatusHandler(JsonHandler):
        def do_GET(self) -> None:
            if self.path == "/jobs":
                self.send_json(200, pipelines.published())
            else:
                self.send_json(404, {"error": "not found"})

    return StatusHandler
