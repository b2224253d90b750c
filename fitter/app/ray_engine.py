"""A batch on a Ray cluster: the same process_image, ledger, summary and resume as the local engine.

Ray places the workers and keeps them alive; this module only feeds them. Each worker is a Ray actor holding
``--cpus-per-fit`` CPUs and ``--gpus-per-fit`` of a GPU for its whole life, so it loads the face model and
the landmark detector once (the process-wide caches of :mod:`fitter.app.batch` and the MediaPipe backend)
and fractional GPUs pack several fits on one card. The driver (the ``facefit fit`` process) hands each idle
worker the next input, records every outcome in the ledger as it arrives (summary.json after every image)
and, when nothing is left to hand out, releases idle workers.

Faults, all handled by Ray: a worker process that dies (or whose node goes away) mid-face is restarted by Ray
(``max_restarts=-1``) on any node with room, and the input it was fitting is retried (``max_task_retries``,
:data:`RETRIES`); the retry resumes, so only the face in progress is fitted again. After the last retry the
input becomes one ``failed`` line with the reason. A restart that finds no room waits for the workers that
are released once the queue is empty, so the batch always finishes while one node is left.

Why actors and not Ray Data's ``map_batches`` or plain tasks: Ray Data retries a dead actor's block until
the whole dataset fails (no bounded per-input retry with a reason) and brings pyarrow and pandas (67 MB);
plain tasks that ask for a GPU run in a fresh process each time (Ray's ``max_calls=1`` for GPU tasks), which
would reload the model and the detector for every image.

OUT (and relative inputs) must be the same path on every node: a shared file system (NFS, Lustre, a mounted
bucket). Each worker checks, before its first input, that it sees a marker file the driver wrote into OUT,
and runs the facefit version of the driver.
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import __version__
from ..observe.cache import CACHE_ENV
from ..observe.mediapipe_backend import NATIVE_LOG_ENV
from .batch import CRASH_ONCE_ENV, BatchOptions, Jobs, process_image, worker_init
from .ledger import ImageOutcome

RAY_MISSING = "--engine ray needs Ray: pip install 'facefit[ray]'"
RETRIES = 2  # an input whose worker dies is tried again by Ray (up to RETRIES times, on the restarting worker)
# and, when those fail too, queued again for a ready worker up to RETRIES times; then listed as failed with the reason
POOL_CHECK_S = 10.0  # how often the driver looks for nodes that joined (it adds workers for their room)
# A head that accepts no TCP connection within this is not there (ray.init itself would retry for minutes).
HEAD_CONNECT_S = 10.0
# What a worker needs from the driver's environment: the test hook, the native log file, the observation
# cache, and MediaPipe's log switches (set by the CLI before MediaPipe loads).
FORWARDED_ENV = (CRASH_ONCE_ENV, NATIVE_LOG_ENV, CACHE_ENV, "GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL")
_MARKER_PREFIX = ".facefit-ray-run"  # in OUT while a run lasts (a leftover's name: tidied after a crash)


class EngineError(RuntimeError):
    """The cluster cannot run the batch. ``str(err)`` is one line: what is wrong, what to do."""


def import_ray():
    """Ray, imported on demand (an optional extra)."""
    try:
        import ray
    except ImportError as exc:
        raise EngineError(RAY_MISSING) from exc
    return ray


@dataclass(frozen=True)
class WorkerCheck:
    """What a worker must match before it takes inputs: the driver's facefit, OUT marker and working folder."""

    version: str
    marker: str  # absolute path of the marker file in OUT
    cwd: str  # the driver's working folder (relative inputs are relative to it)
    needs_cwd: bool  # some input or option path is relative


class FitWorker:
    """One Ray actor: fits one input at a time, keeping the model and the detector between inputs."""

    def __init__(self, threads: int, check: WorkerCheck) -> None:
        worker_init(threads)
        self.check = check
        try:
            os.chdir(check.cwd)  # relative inputs resolve as on the driver; report.json records the same input
            self.cwd_problem = ""
        except OSError as exc:
            self.cwd_problem = f"cannot enter the folder facefit was started in, {check.cwd} ({exc.strerror})"

    def problem(self) -> str:
        """Why this node cannot fit for the driver ('' when it can)."""
        if __version__ != self.check.version:
            return f"runs facefit {__version__}, not the driver's {self.check.version}"
        if not Path(self.check.marker).exists():
            return (f"does not see the output folder {Path(self.check.marker).parent}: it must be on a file "
                    f"system every node mounts at the same path (NFS, Lustre, a mounted bucket)")
        if self.check.needs_cwd and self.cwd_problem:
            return f"{self.cwd_problem}: mount the shared file system at the same path or pass absolute paths"
        return ""

    def ready(self) -> tuple[str, str]:
        """(node name, problem or '') once this worker is placed: a node that cannot work names itself."""
        return socket.gethostname(), self.problem()

    def fit(self, path: str, stem: str, out_dir: str, options: BatchOptions) -> ImageOutcome:
        problem = self.problem()  # checked again: Ray may have restarted this worker on another node
        if problem:
            return ImageOutcome(path, error=f"{path}: node {socket.gethostname()} {problem}")
        return process_image(Path(path), stem, Path(out_dir), options)


class RayEngine:
    """Fits a batch's inputs on a Ray cluster (use as a context manager: it connects and disconnects).

    ``address``: None = RAY_ADDRESS, else a cluster started on this machine, else a new local one (Ray's
    rule); ``"auto"`` = an existing cluster only; ``"HOST:PORT"`` = that cluster's head.
    ``retries``: how often an input whose worker died is tried again.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_fit: float = 1.0, gpus_per_fit: float = 0.0,
                 retries: int = RETRIES) -> None:
        if cpus_per_fit <= 0 or gpus_per_fit < 0:
            raise EngineError(f"a fit needs a positive number of CPUs and no negative GPUs (got "
                              f"--cpus-per-fit {cpus_per_fit:g}, --gpus-per-fit {gpus_per_fit:g})")
        self.ray = import_ray()
        self.address, self.cpus, self.gpus, self.retries = address, float(cpus_per_fit), float(gpus_per_fit), retries
        self._connected_here = False

    def __enter__(self) -> RayEngine:
        ray = self.ray
        if not ray.is_initialized():
            head = self.address or os.environ.get("RAY_ADDRESS")
            unreachable = _unreachable(head) if head else ""
            if unreachable:
                raise EngineError(f"cannot reach the Ray head at {head} ({unreachable}); start it with `ray start "
                                  f"--head` there, or give the right HOST:PORT with --address")
            try:
                ray.init(address=self.address, logging_level=logging.WARNING, namespace="facefit")
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = self.address or "RAY_ADDRESS or this machine"
                raise EngineError(f"cannot reach a Ray cluster at {where} ({_first_line(exc)}); start one with "
                                  f"`ray start --head` or give its head with --address HOST:PORT") from exc
            self._connected_here = True
        if not self.slots():
            raise EngineError(f"no node of the Ray cluster has {self.cpus:g} CPU(s) and {self.gpus:g} GPU(s) "
                              f"free for one fit ({self.nodes_text()}); lower --cpus-per-fit/--gpus-per-fit or "
                              f"add nodes")
        return self

    def __exit__(self, *exc) -> None:
        if self._connected_here:
            self.ray.shutdown()

    def slots(self) -> int:
        """How many fits the cluster's live nodes hold at once (each node's own CPUs and GPUs)."""
        total = 0
        for node in self.ray.nodes():
            if not node.get("Alive"):
                continue
            res = node.get("Resources", {})
            fits = int(res.get("CPU", 0) // self.cpus)
            if self.gpus > 0:
                fits = min(fits, int(res.get("GPU", 0) // self.gpus))
            total += fits
        return total

    def nodes_text(self) -> str:
        alive = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        return "; ".join(f"a node with {r.get('CPU', 0):g} CPU(s), {r.get('GPU', 0):g} GPU(s)" for r in alive) \
            or "no live node"

    def __call__(self, jobs: Jobs, out_dir: Path, options: BatchOptions,
                 done: Callable[[ImageOutcome], None]) -> None:
        if not jobs:
            return
        out_dir = Path(out_dir).absolute()
        fd, marker = tempfile.mkstemp(prefix=f"{_MARKER_PREFIX}.{os.getpid()}.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        paths = [p for p, _ in jobs] + [p for p in (options.cache_dir, options.parser_weights) if p]
        check = WorkerCheck(__version__, marker, os.getcwd(), any(not Path(p).is_absolute() for p in paths))
        pool = _Pool(self, check, max(1, round(self.cpus)))
        try:
            pool.run(deque(jobs), str(out_dir), options, done)
        finally:
            pool.release_all()
            Path(marker).unlink(missing_ok=True)


class _Pool:
    """The driver's side of the workers: which are starting, idle or busy, and with what."""

    def __init__(self, engine: RayEngine, check: WorkerCheck, threads: int) -> None:
        self.engine, self.ray, self.check = engine, engine.ray, check
        env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
        env.update(OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
        self.actor_class = self.ray.remote(FitWorker).options(
            num_cpus=engine.cpus, num_gpus=engine.gpus, max_restarts=-1, max_task_retries=engine.retries,
            runtime_env={"env_vars": env})
        self.threads = threads
        self.starting: dict = {}  # ready() ref -> actor
        self.busy: dict = {}  # fit() ref -> (actor, input path, stem)
        self.lost: dict = {}  # input path -> how often its worker was lost (Ray's own retries included)
        self.idle: list = []
        self.last_check = 0.0

    def run(self, waiting: deque, out_dir: str, options: BatchOptions, done: Callable[[ImageOutcome], None]) -> None:
        while waiting or self.busy:
            self._grow(len(waiting))
            while self.idle and waiting:
                actor = self.idle.pop()
                path, stem = waiting.popleft()
                self.busy[actor.fit.remote(str(path), stem, out_dir, options)] = (actor, path, stem)
            if not waiting:  # room for workers that are restarting elsewhere: the batch ends while a node is left
                self._release(self.idle + list(self.starting.values()))
                self.idle, self.starting = [], {}
            refs = [*self.busy, *self.starting]
            if not refs:
                if waiting and not self.engine.slots():
                    raise EngineError(f"no node of the Ray cluster is left with room for a fit "
                                      f"({self.engine.nodes_text()}); re-run when nodes are back: it resumes")
                self.last_check = 0.0  # look for room now
                continue
            ready, _ = self.ray.wait(refs, num_returns=1, timeout=POOL_CHECK_S)
            for ref in ready:
                if ref in self.starting:
                    self._started(ref)
                else:
                    actor, path, stem = self.busy.pop(ref)
                    outcome, lost = self._outcome(ref, path)
                    if lost:  # Ray is restarting it, or gave up on it: a fresh worker in its place
                        self._release([actor])
                        self.last_check = 0.0
                        self.lost[path] = self.lost.get(path, 0) + 1
                        if self.lost[path] <= self.engine.retries:  # Ray's retries can all hit a worker that
                            waiting.appendleft((path, stem))  # is still restarting: queue it for a ready one
                            continue
                    else:
                        self.idle.append(actor)
                    done(outcome)

    def _grow(self, waiting: int) -> None:
        """Start workers up to the cluster's room (checked every POOL_CHECK_S: nodes may have joined)."""
        if not waiting or time.monotonic() - self.last_check < POOL_CHECK_S:
            return
        self.last_check = time.monotonic()
        have = len(self.starting) + len(self.busy) + len(self.idle)
        for _ in range(min(self.engine.slots(), have + waiting) - have):
            actor = self.actor_class.remote(self.threads, self.check)
            self.starting[actor.ready.remote()] = actor

    def _started(self, ref) -> None:
        actor = self.starting.pop(ref)
        try:
            node, problem = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self._release([actor])
            raise EngineError(f"a facefit worker could not start on the cluster ({_first_line(exc)}); install "
                              f"facefit {__version__} on every node") from exc
        if problem:
            self._release([actor])
            raise EngineError(f"node {node} {problem}; fix that node or take it out of the cluster")
        self.idle.append(actor)

    def _outcome(self, ref, path) -> tuple[ImageOutcome, bool]:
        """The worker's outcome, or a failed one when the worker was lost on every try (and whether it was)."""
        try:
            return self.ray.get(ref), False
        except self.ray.exceptions.RayActorError as exc:
            tries = self.engine.retries + 1
            return ImageOutcome(str(path), error=(
                f"{path}: the worker fitting it was lost {tries} time(s) ({type(exc).__name__}: {_first_line(exc)}); "
                f"faces it had finished are kept; re-run to try the rest again")), True
        except self.ray.exceptions.RayError as exc:  # process_image never raises: a fault of Ray's own
            return ImageOutcome(str(path), error=f"{path}: the Ray task failed ({_first_line(exc)})"), True

    def _release(self, actors: list) -> None:
        for actor in actors:
            self.ray.kill(actor)

    def release_all(self) -> None:
        self._release([a for a, _, _ in self.busy.values()] + self.idle + list(self.starting.values()))
        self.busy, self.idle, self.starting = {}, [], {}


def _unreachable(address: str) -> str:
    """Why a ``HOST:PORT`` address accepts no TCP connection ('' when it does, or is not of that form)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return ""
    try:
        with socket.create_connection((host, int(port)), timeout=HEAD_CONNECT_S):
            return ""
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
