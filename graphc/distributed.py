"""Data-parallel training on Ray: long-lived worker actors, each holding a compiled copy of
the model and the training arrays, compute the gradient of their shard of every batch; a
Ray Compiled Graph averages them and every worker applies the same update."""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from graphc.errors import GraphcError, InputError

RAY_HINT = "pip install 'graphc[ray]'"
START_TIMEOUT_S = 600.0  # workers compile their model (a cache hit takes about a second)


class WorkerError(GraphcError, RuntimeError):
    """A Ray worker died or failed; `step` is the last step every worker completed."""

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(f"workers=N trains on Ray, which is not installed: {RAY_HINT}") from None
    return ray


def connect(address: str | None, workers: int) -> Any:
    """The `ray` module, connected: the running session, else a local one (address=None)
    or the cluster at `address` ("auto", "ray://host:10001", "host:6379")."""
    ray = _ray()
    if not ray.is_initialized():
        quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            if address is None:  # enough logical CPUs for one actor per worker
                ray.init(num_cpus=max(workers, os.cpu_count() or 1), **quiet)
            else:
                ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise InputError(f"cannot connect to the Ray cluster at {address!r}: {e} (start "
                             "one with `ray start --head`, or pass address=None for a local "
                             "one)") from None
    cpus = ray.cluster_resources().get("CPU", 0)
    if cpus < workers:
        raise InputError(f"workers={workers} needs {workers} CPUs, one per worker, but the Ray "
                         f"cluster has {cpus:g}; add nodes or ask for fewer workers")
    return ray


class Worker:
    """One Ray actor: a compiled model, the training arrays, an optimizer like the driver's.

    mode "gradients": `send` returns the weighted gradient of this worker's shard, rank 0's
    `reduce` sums them in rank order, every `apply` makes the same update. Mode "params"
    (sync_every=k): `send` makes a local step on the shard and, on sync steps, returns the
    params, whose mean `apply` installs.
    """

    def __init__(self, rank: int, size: int, model_cls: type, graph: Any, backend: str,
                 dtype: str,
                 options: dict, arrays: dict, batched: tuple, params: dict, opt_spec: dict,
                 opt_state: dict, mode: str, fail_at: int | None = None):
        from graphc import optim

        self.rank, self.size, self.mode, self.fail_at = rank, size, mode, fail_at
        self.model = model_cls(graph, backend=backend, dtype=dtype, **options)
        self.model.params = {k: np.array(v, dtype=self.model.dtype) for k, v in params.items()}
        self.arrays, self.batched = arrays, tuple(batched)
        self.opt = optim.from_spec(opt_spec)
        self.opt.load_state_dict(opt_state)
        self.names = list(self.model.params)
        self.fused = getattr(self.model.backend, "train_step", None) is not None
        self.updates: dict[tuple, Any] = {}
        if self.fused and mode == "gradients":
            self.names = [name for name, _, _ in self._trainer().module.PARAMS]
        self.sent = 0
        self.pending: dict = {}
        self.busy: deque[float] = deque(maxlen=100_000)  # s of compute per step (benchmarks)
        self.committed = self._state()

    def ready(self) -> int:
        return os.getpid()

    def compute_times(self) -> list[float]:
        """Seconds each step spent computing here (send and apply, not waiting)."""
        return list(self.busy)

    def _state(self) -> tuple[int, dict, dict]:
        return (self.opt.t, copy.deepcopy(self.model.params),
                copy.deepcopy(self.opt.state_dict()))

    def state(self) -> tuple[int, dict, dict]:
        """(steps, params, optimizer state) after the last completed step (after the last
        sync with sync_every)."""
        return self._state() if self.mode == "gradients" else self.committed

    def set_state(self, params: dict, opt_state: dict) -> bool:
        self.model.params = {k: np.array(v, dtype=self.model.dtype) for k, v in params.items()}
        self.opt.load_state_dict(opt_state)
        self.committed = self._state()
        return True

    # the compiled graph's three methods -----------------------------------------------
    def send(self, msg: dict) -> tuple[float, np.ndarray | None]:
        t0 = time.perf_counter()
        try:
            return self._send(msg)
        finally:
            self.t_send = time.perf_counter() - t0

    def _send(self, msg: dict) -> tuple[float, np.ndarray | None]:
        self.sent += 1
        if self.fail_at is not None and self.sent == self.fail_at:
            os._exit(1)  # tests: a worker process dying in the middle of a step
        self.pending = msg
        idx, n = msg["idx"], msg["n"]
        part = (np.arange(n) if idx is None else idx)[
            np.array_split(np.arange(n), self.size)[self.rank]]
        w = len(part) / n
        batch = {k: v[part] if k in self.batched else v for k, v in self.arrays.items()}
        if self.mode == "params":
            self.opt.hyper.update(msg["hyper"])
            loss = self._local_step(batch, len(part), msg) if len(part) else 0.0
            flat = self._flat(self.model.params, 1.0 / self.size) if msg["sync"] else None
            return w * loss, flat
        if not len(part):
            return 0.0, np.zeros(sum(p.size for p in self.model.params.values()),
                                 self.model.dtype)
        loss, grads = self._grad(batch, len(part), msg["accumulate"])
        return w * loss, self._flat(grads, w)

    def reduce(self, *parts: tuple[float, np.ndarray | None]) -> tuple[float, Any]:
        loss = math.fsum(p[0] for p in parts)
        if parts[0][1] is None:
            return loss, None
        total = parts[0][1].copy()
        for p in parts[1:]:
            total += p[1]
        return loss, total

    def apply(self, reduced: tuple[float, Any]) -> float:
        from graphc.optim import clip_gradients

        t0 = time.perf_counter()
        loss, flat = reduced
        msg = self.pending
        if self.mode == "gradients":
            self.opt.hyper.update(msg["hyper"])
            if self.fused:
                self._compiled_update(np.array(flat), msg)
            else:
                grads = self._unflat(flat)
                clip_gradients(grads, msg["clip_grad_norm"], msg["clip_grad_value"])
                self.opt.step(self.model.params, grads)
        elif flat is not None:
            for k, v in self._unflat(flat).items():
                self.model.params[k][...] = v
            self.committed = self._state()
        self.busy.append(self.t_send + time.perf_counter() - t0)
        return loss

    # helpers --------------------------------------------------------------------------
    def _compiled_update(self, flat: np.ndarray, msg: dict) -> None:
        """Clip and update with the compiled backend's own loop over the packed params
        (NumPy's update of a large model takes as long as its whole fused step)."""
        tr = self._trainer()
        tr.state.slots = self.opt.state
        tr.state.bind(self.model.params)  # params and slots become views of P and S
        inf = math.inf
        norm, value = msg["clip_grad_norm"], msg["clip_grad_value"]
        tr.module.clip_gradients(flat, inf if norm is None else float(norm),
                                 inf if value is None else float(value))
        t = self.opt.t + 1
        tr.module.update(tr.state.P, flat, tr.state.S,
                         *[float(self.opt.hyper[k]) for k in tr.hyper], float(t))
        self.opt.t = t

    def _trainer(self) -> Any:
        from graphc.backends.numba_cpu import Trainer

        lines = tuple(self.opt.update_lines())  # they change when a hyper-parameter hits 0
        if lines not in self.updates:
            self.updates[lines] = Trainer(self.model.backend, self.model, self.opt, lines)
        return self.updates[lines]

    def _grad(self, batch: dict, n: int, accumulate: int) -> tuple[float, dict]:
        k = min(n, -(-accumulate // self.size))  # micro-batches no larger than one process's
        if k <= 1:
            return self.model.grad(**batch)
        total, acc = 0.0, None
        for part in np.array_split(np.arange(n), k):
            loss, grads = self.model.grad(**{a: v[part] if a in self.batched else v
                                            for a, v in batch.items()})
            w = len(part) / n
            total += w * loss
            acc = ({g: w * v for g, v in grads.items()} if acc is None
                   else {g: acc[g] + w * v for g, v in grads.items()})
        return total, acc

    def _local_step(self, batch: dict, n: int, msg: dict) -> float:
        from graphc.optim import clip_gradients

        if min(n, -(-msg["accumulate"] // self.size)) <= 1:
            return self.model.train_step(self.opt, clip_grad_norm=msg["clip_grad_norm"],
                                         clip_grad_value=msg["clip_grad_value"], **batch)
        loss, grads = self._grad(batch, n, msg["accumulate"])
        clip_gradients(grads, msg["clip_grad_norm"], msg["clip_grad_value"])
        self.opt.step(self.model.params, grads)
        return loss

    def _flat(self, arrays: Mapping[str, np.ndarray], scale: float) -> np.ndarray:
        flat = np.concatenate([np.ravel(arrays[k]) for k in self.names])
        flat *= flat.dtype.type(scale)
        return flat

    def _unflat(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        out, at = {}, 0
        for k in self.names:
            p = self.model.params[k]
            out[k] = flat[at:at + p.size].reshape(p.shape)
            at += p.size
        return out


_ACTOR: Any = None
STEP_TIMEOUT_S = 7 * 24 * 3600.0  # Ray's compiled graphs give up after 10 s by default
FAIL_AT: tuple[int, int] | None = None  # tests: (rank, step) at which that worker's process exits


def _actor_class() -> Any:
    global _ACTOR
    if _ACTOR is None:
        _ACTOR = _ray().remote(num_cpus=1, max_restarts=0, max_task_retries=0)(Worker)
    return _ACTOR


class DataParallel:
    """The driver's side: starts `workers` actors, compiles the step into a Ray Compiled
    Graph (send on every worker, reduce on rank 0, apply on every worker) and runs it."""

    def __init__(self, model: Any, train: Any, opt: Any, workers: int,
                 address: str | None = None, sync_every: int | None = None):
        for key, v in (("workers", workers), ("sync_every", sync_every)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                  or v < 1):
                raise InputError(f"{key} must be a positive integer, got {v!r}")
        self.size, self.sync_every = int(workers), sync_every
        self.mode = "gradients" if sync_every is None else "params"
        self.model, self.steps = model, 0
        self.recent: deque[float] = deque(maxlen=5)  # the last steps' wall times
        ray = self.ray = connect(address, self.size)
        from ray.dag import InputNode, MultiOutputNode

        data = ray.put(train.arrays)
        self.n, self.batched = train.n, train.batched
        actor = _actor_class()
        self.workers = [actor.remote(
            rank, self.size, type(model), model.graph, model.backend_name, model.dtype.name,
            model.options, data, train.batched, model.params, opt.to_spec(), opt.state_dict(),
            self.mode, FAIL_AT[1] if FAIL_AT is not None and FAIL_AT[0] == rank else None)
            for rank in range(self.size)]
        self.dag = None
        try:
            ray.get([w.ready.remote() for w in self.workers], timeout=START_TIMEOUT_S)
        except Exception as e:
            self.close()
            raise self._error(e, "a worker could not start") from None
        with InputNode() as msg:
            sent = [w.send.bind(msg) for w in self.workers]
            reduced = self.workers[0].reduce.bind(*sent)
            dag = MultiOutputNode([w.apply.bind(reduced) for w in self.workers])
        nbytes = sum(p.nbytes for p in model.params.values())
        self.dag = dag.experimental_compile(_buffer_size_bytes=nbytes + 65536)

    def step(self, idx: np.ndarray | None, opt: Any, options: Mapping[str, Any],
             last_of_epoch: bool = False) -> float:
        """One data-parallel step on the batch `idx`; returns the batch's mean loss."""
        k = self.sync_every
        msg = {"idx": idx, "n": (self.n or 1) if idx is None else len(idx),
               "hyper": dict(opt.hyper), "accumulate": options["accumulate"],
               "clip_grad_norm": options["clip_grad_norm"],
               "clip_grad_value": options["clip_grad_value"],
               "sync": k is not None and (last_of_epoch or (self.steps + 1) % k == 0)}
        t0 = time.perf_counter()
        try:
            ref = self.dag.execute(msg)
            if len(self.recent) == self.recent.maxlen:
                # Ray's reader polls without sleeping: on a machine without a core to spare
                # for the driver it would slow the workers down, so sleep through most of
                # the step first (half the shortest of the last few)
                time.sleep(0.5 * min(self.recent))
            losses = self.ray.get(ref, timeout=STEP_TIMEOUT_S)
        except Exception as e:
            done = self._recover(opt)
            raise self._error(e, f"step {self.steps + 1} of this run failed", done) from None
        self.recent.append(time.perf_counter() - t0)
        self.steps += 1
        opt.t += 1
        return float(losses[0])

    def pull(self, opt: Any) -> None:
        """The driver's model and optimizer as the workers hold them."""
        try:
            t, params, state = self.ray.get(self.workers[0].state.remote(),
                                            timeout=STEP_TIMEOUT_S)
        except Exception as e:
            done = self._recover(opt)
            raise self._error(e, "reading the params back failed", done) from None
        self._install(opt, params, state)

    def _recover(self, opt: Any) -> int | None:
        """After a failure: the driver takes the state of the last step the workers
        completed (every apply uses the full average, so a survivor is never half-way)."""
        self.close(kill=False)
        best = None
        for w in self.workers:
            try:
                got = self.ray.get(w.state.remote(), timeout=30)
            except Exception:
                continue
            if best is None or got[0] > best[0]:
                best = got
        self.close()
        if best is None:
            return None
        self._install(opt, best[1], best[2])
        return best[0]

    def _install(self, opt: Any, params: dict, state: dict) -> None:
        hyper = dict(opt.hyper)  # the driver's schedule may have moved on since that step
        self.model.params = params
        opt.load_state_dict(state)
        opt.hyper.update(hyper)

    def _error(self, e: BaseException, what: str, done: int | None = None) -> GraphcError:
        cause = getattr(e, "cause", None)
        if isinstance(cause, GraphcError):
            return cause
        died = type(e).__name__ in ("ActorDiedError", "RayActorError", "ActorUnavailableError")
        reason = ("a worker process died" if died else
                  f"{type(cause or e).__name__}: {str(cause or e).strip().splitlines()[-1]}")
        where = ("the driver's params and optimizer are those after optimizer step "
                 f"{done}, the last one every worker completed" if done is not None else
                 "no worker survived to report its params; the driver's params are those "
                 "of the last finished epoch")
        return WorkerError(f"data-parallel training on {self.size} Ray workers: {what} "
                           f"({reason}); {where}", done)

    def close(self, kill: bool = True) -> None:
        if self.dag is not None:
            log = logging.getLogger("ray.dag.compiled_dag_node")
            level = log.level
            log.setLevel(logging.CRITICAL)  # after a death Ray logs the cancelled loops' tracebacks
            try:
                self.dag.teardown()
            except Exception:
                pass
            finally:
                log.setLevel(level)
            self.dag = None
        if kill:
            for w in self.workers:
                try:
                    self.ray.kill(w)
                except Exception:
                    pass
