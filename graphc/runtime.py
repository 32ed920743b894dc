"""Model: a compiled spec with its params, behind one API whatever the backend.

Programs are built once per purpose (forward, gradients for a set of `wrt`, trace) and
compiled once by the backend; inputs are checked against the spec before every call.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from graphc import backends
from graphc import dims as dimsmod
from graphc import init as initializers
from graphc.backends.numpy_interp import evaluate
from graphc.backends.protocol import Backend, fused_step
from graphc.errors import InputError, did_you_mean
from graphc.inputs import bind_inputs
from graphc.ir import FLOAT, FLOAT_DTYPES, Node, Program, Trace
from graphc.optim import clip_gradients
from graphc.passes import forward_program, grad_program, prune, specialize
from graphc.spec import Graph


class ParamDict(dict):
    """A model's params by name. Assigning `m.params[name] = array` copies the numbers
    into the model's own array (as torch's load_state_dict does): training never writes
    into the caller's array, and every backend sees the new values."""

    def __setitem__(self, name: str, value: Any) -> None:
        old = self.get(name)
        if old is None:
            hint = did_you_mean(name, list(self))
            raise InputError(f"no param named {name!r}" + (f" ({hint})" if hint else ""))
        try:
            arr = np.asarray(value, dtype=old.dtype)
        except (TypeError, ValueError):
            raise InputError(f"param {name!r}: not a number or a regular array") from None
        if arr.shape != old.shape:
            raise InputError(f"param {name!r} has shape {list(old.shape)}, got "
                             f"{list(arr.shape)}")
        old[...] = arr

    def __reduce__(self) -> tuple:  # pickle and deepcopy rebuild it whole, not item by item
        return ParamDict, (dict(self),)


class Model:
    """A graph compiled for one backend and dtype, holding its params and state.

    `forward`, `evaluate` and `trace` evaluate; `grad` and `train_step` train: each takes
    `training=True|False` to choose. Training calls write the spec's state updates into
    `state` and advance `step`, the counter that random draws are keyed by.
    """

    def __init__(self, graph: Graph, backend: str = "cpu", dtype: str = "float32",
                 **options: Any):
        if str(dtype) not in FLOAT_DTYPES:
            raise InputError(f"dtype must be float32 or float64, not {dtype!r}")
        self.graph = graph
        self.dtype = np.dtype(dtype)
        self.program = forward_program(graph)
        self.backend_name = backend
        self.backend: Backend = backends.get(backend, **options)
        self.options = options
        check_memory(self.program, {}, self.dtype, what="allocating the params",
                     advice="make the layers smaller", kinds=("param", "state"))
        self.params = init_params(self.program, self.dtype)
        self.state: dict[str, np.ndarray] = init_state(self.program, self.dtype)
        self.step = 0  # training calls so far: the `step` of random draws
        self._compiled: dict[Any, Any] = {}
        self._programs: dict[Any, Program] = {}
        self._names: dict[Any, tuple[list[str], list[str]]] = {}  # evaluate: names, ids
        self._fitted: set[Any] = set()  # (program, sizes) whose memory need was checked

    @property
    def params(self) -> ParamDict:
        """The params by name; assigning one copies into the model's storage."""
        return self._params

    @params.setter
    def params(self, values: Mapping[str, Any]) -> None:
        new = ParamDict({k: np.array(v, dtype=self.dtype) for k, v in values.items()})
        old = getattr(self, "_params", None)
        if old is not None:  # the same names and shapes as the model's
            odd = sorted(old.keys() ^ new.keys())
            if odd:
                raise InputError(f"params: {'missing' if odd[0] in old else 'unknown'} param "
                                 f"{odd[0]!r}")
            for name, arr in new.items():
                if arr.shape != old[name].shape:
                    raise InputError(f"param {name!r} has shape {list(old[name].shape)}, got "
                                     f"{list(arr.shape)}")
        self._params = new

    def __repr__(self) -> str:
        n = sum(p.size for p in self.params.values())
        return (f"<graphc.Model {self.graph.name!r}: {len(self.params)} params ({n:,} numbers), "
                f"backend={self.backend_name!r}, dtype={self.dtype.name!r}>")

    # programs ------------------------------------------------------------------------
    def mode_program(self, training: bool) -> Program:
        """The forward program specialized to training or evaluation."""
        key = ("mode", bool(training))
        if key not in self._programs:
            prog = specialize(self.program, bool(training))
            self._programs[key] = prune(prog, [*prog.outputs.values(),
                                               *([prog.loss] if prog.loss else [])])
        return self._programs[key]

    def grad_program(self, wrt: Iterable[str] = (), training: bool = True) -> Program:
        key = ("grad", tuple(sorted(wrt)), bool(training))
        if key not in self._programs:
            self._programs[key] = grad_program(self.mode_program(training), key[1],
                                               keep_outputs=False)
        return self._programs[key]

    def _fn(self, key: Any, program: Program, results: list[str]):
        """The compiled function of `results` and then the values of the state updates."""
        if key not in self._compiled:
            results = [*results, *program.updates.values()]
            self._compiled[key] = self.backend.compile(program, self.dtype, results)
        return self._compiled[key]

    def _call(self, key: Any, program: Program, results: list[str], inputs: Mapping[str, Any],
              training: bool) -> list[np.ndarray]:
        """Run `results` of `program`; a training call then updates the state and step."""
        fn = self._fn(key, program, results)
        quick = getattr(fn, "quick", None)  # a backend's way for inputs already its arrays
        out = None
        if quick is not None and not program.state and program.step is None:
            shapes = [getattr(v, "shape", None) for v in inputs.values()]
            self._fits((id(program), "quick", *shapes), program, lambda: {
                d: n for (name, _), shape in zip(inputs.items(), shapes)
                if shape is not None and name in program.inputs
                for d, n in zip(program[program.inputs[name]].shape, shape)
                if isinstance(d, str)})
            out = quick(self.params, inputs)
        if out is None:
            out = fn(self.feeds(program, inputs))
        if training:
            n = len(out) - len(program.updates)
            for name, value in zip(program.updates, out[n:]):
                self.state[name] = value
            out = out[:n]
            self.step += 1
        return out

    # running -------------------------------------------------------------------------
    def forward(self, *, training: bool = False, **inputs: Any) -> dict[str, np.ndarray]:
        """The spec's outputs by name (inputs only the loss reads, such as labels, may be
        left out)."""
        return self.evaluate(list(self.program.outputs), training=training, **inputs)

    def evaluate(self, names: Iterable[str] | None = None, /, *, training: bool = False,
                 **inputs: Any) -> dict[str, np.ndarray]:
        """Forward values by spec name: `names` may hold outputs, the loss and any named
        node (composite internals too); by default the outputs and the loss."""
        fwd = self.mode_program(training)
        if names is None:
            names = [*fwd.outputs, *([self.graph.loss] if fwd.loss is not None else [])]
        key = ("evaluate", tuple(names), bool(training))
        if key not in self._programs:  # checked and pruned once per set of names
            names = list(dict.fromkeys(names))
            known = fwd.by_name()
            for n in names:
                if n not in known:
                    hint = did_you_mean(n, known)
                    raise InputError(f"no value named {n!r} in the model"
                                     + (f" ({hint})" if hint else ""))
            self._programs[key] = prune(fwd, [known[n] for n in names])
            ids = self._programs[key].by_name()
            self._names[key] = (names, [ids[n] for n in names])  # by_name() once, not per call
        prog, (names, results) = self._programs[key], self._names[key]
        return dict(zip(names, self._call(key, prog, results, inputs, training)))

    def grad(self, wrt: Iterable[str] = (), *, training: bool = True,
             **inputs: Any) -> tuple[float, dict[str, np.ndarray]]:
        """The loss and its gradients for every param (and for the inputs in `wrt`)."""
        wrt = tuple(wrt)
        prog = self.grad_program(wrt, training)
        results = [prog.loss, *prog.grads.values()]
        key = ("grad", tuple(sorted(wrt)), bool(training))
        loss, *grads = self._call(key, prog, results, inputs, training)
        return float(loss), dict(zip(prog.grads, grads))

    def train_step(self, optimizer: Any, *, clip_grad_norm: float | None = None,
                   clip_grad_value: float | None = None, training: bool = True,
                   **inputs: Any) -> float:
        """One forward, backward and update; returns the loss before the update.

        Gradients are clipped first when asked, as torch.nn.utils.clip_grad_norm_ /
        clip_grad_value_ do. Compiled backends run all of it as one call (for now, only
        for models without state or random draws).
        """
        fused = fused_step(self.backend)
        prog = self.grad_program((), training)
        if fused is not None and training and not prog.updates and prog.step is None:
            # the fused step skips feeds(): check memory here (values that are not arrays
            # go through feeds(), which checks them)
            shapes = [getattr(v, "shape", None) for v in inputs.values()]
            self._fits((id(prog), *shapes), prog, lambda: {
                d: n for (name, _), shape in zip(inputs.items(), shapes)
                if shape is not None and name in prog.inputs
                for d, n in zip(prog[prog.inputs[name]].shape, shape) if isinstance(d, str)})
            loss = fused(self, optimizer, inputs, clip_grad_norm=clip_grad_norm,
                         clip_grad_value=clip_grad_value)
            self.step += 1
            return loss
        loss, grads = self.grad(training=training, **inputs)
        clip_gradients(grads, clip_grad_norm, clip_grad_value)
        optimizer.step(self.params, grads)
        return loss

    def train_epoch(self, optimizer: Any, *, batch_size: int = 32, shuffle: bool = True,
                    seed: int | None = None, drop_last: bool = False,
                    batches: list[np.ndarray] | None = None, lr: Any = None,
                    clip_grad_norm: float | None = None, clip_grad_value: float | None = None,
                    **inputs: Any) -> np.ndarray:
        """One pass over the rows of `inputs` in mini-batches, one update each: on the cpu
        backend shuffling's gather, the steps and the loss sums are one compiled call.

        Batches are `batch_size` rows in an order shuffled by `seed` (as `fit` does), or
        the index arrays `batches`; `lr` gives one rate per step (a schedule). Returns the
        steps' losses; it stops after the first non-finite one.
        """
        from graphc import data as datamod
        from graphc.epochs import run_epoch

        ds = datamod.prepare(self, inputs, "train_epoch")
        if ds.n is None:
            raise InputError("train_epoch: no input has a batch axis; use train_step")
        if batches is None:
            batches = list(ds.batches(int(batch_size), shuffle, drop_last,
                                      np.random.default_rng(seed)))
        hypers = None
        if lr is not None:
            rates = np.asarray(lr, dtype=float).reshape(-1)
            if len(rates) != len(batches):
                raise InputError(f"train_epoch: lr has {len(rates)} rates for "
                                 f"{len(batches)} steps; give one per step")
            hypers = [{**optimizer.hyper, "lr": float(r)} for r in rates]
        losses, done = run_epoch(self, optimizer, ds.arrays, ds.batched, batches, hypers,
                                 clip_grad_norm, clip_grad_value)
        return losses[:done]

    def fit(self, data: Mapping[str, Any], **options: Any):
        """Train on arrays named after the inputs; see graphc.train.fit for the options."""
        from graphc.train import fit

        return fit(self, data, **options)

    def trace(self, wrt: Iterable[str] | None = None, *, training: bool = False,
              **inputs: Any) -> Trace:
        """Run the NumPy reference and keep every value and gradient, node by node.

        Gradients are taken for every param and, unless `wrt` says otherwise, every
        float input (a lecture's backprop figure shows the inputs' gradients too). With
        `training=True` it shows what the next training call computes (the same random
        draws) without changing `state` or `step`.
        """
        fwd = self.mode_program(training)
        if fwd.loss is not None:
            if wrt is None:
                wrt = [n for n, i in fwd.inputs.items() if fwd[i].dtype == FLOAT]
            prog = grad_program(fwd, tuple(wrt), keep_all=True)
        else:
            prog = fwd
        steps: list[tuple[str, str]] = []
        n_forward = len(fwd.nodes)
        fwd_ids = set(fwd.nodes)

        def record(node_id: str, value: np.ndarray) -> None:
            steps.append(("forward" if node_id in fwd_ids else "backward", node_id))

        by_id = evaluate(prog, self.feeds(prog, inputs), self.dtype, on_node=record)
        assert n_forward <= len(prog.nodes)
        t = Trace(program=prog, by_id=by_id, steps=steps)
        for node in prog:
            if node.name is not None and node.grad_of is None and node.id in fwd_ids:
                t.values[node.name] = by_id[node.id]
                g = prog.grad_map.get(node.id)
                if g is not None:
                    t.grads[node.name] = by_id[g]
        for name, g in prog.grads.items():
            t.grads[name] = by_id[g]
        if prog.loss is not None:
            t.loss = float(by_id[prog.loss])
        return t

    # inputs --------------------------------------------------------------------------
    def feeds(self, program: Program, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Arrays by node id for the program's inputs, params, state and step, the inputs
        checked against the spec."""
        bound: dict[str, tuple[int, str]] = {}
        feeds = {**bind_inputs(self.graph, program, inputs, self.dtype, bound),
                 **{program.params[k]: v for k, v in self.params.items() if k in program.params},
                 **{program.state[k]: v for k, v in self.state.items() if k in program.state}}
        if program.step is not None:
            feeds[program.step] = np.asarray(self.step, np.int64)
        self._fits((id(program), *bound.items()), program,
                   lambda: {d: n for d, (n, _) in bound.items()})
        return feeds

    def _fits(self, key: Any, program: Program, sizes: Any) -> None:
        """Refuse a call whose arrays would not fit in memory (an InputError instead of a
        MemoryError deep inside); checked once per `key`, a program and its batch size.
        `sizes()` gives the symbolic dims' sizes, computed only then."""
        if key not in self._fitted:
            check_memory(program, sizes(), self.dtype)
            if len(self._fitted) > 1000:  # traces build a program per call: do not grow
                self._fitted.clear()
            self._fitted.add(key)

    # params --------------------------------------------------------------------------
    def reset_params(self, seed: int | None = None) -> None:
        self.params = init_params(self.program, self.dtype, seed)

    def reset_state(self) -> None:
        self.state = init_state(self.program, self.dtype)
        self.step = 0

    def save(self, path: str | Path) -> None:
        """Write the params and the state to an .npz file (one array each, by name)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **self.params, **self.state)
        tmp.replace(path)

    def load(self, path: str | Path) -> None:
        """Read params and state written by `save` (or `graphc train`); checks names and
        shapes."""
        self.params = read_params(path, self.params)
        if self.state:
            self.state = read_params(path, self.state, "state buffer")


def init_params(program: Program, dtype: np.dtype,
                seed: int | None = None) -> dict[str, np.ndarray]:
    seed = program.seed if seed is None else seed
    return {name: initializers.initialize(program.param_init[name],
                                          tuple(program[i].shape), seed, name, dtype)
            for name, i in program.params.items()}


def init_state(program: Program, dtype: np.dtype) -> dict[str, np.ndarray]:
    return {name: initializers.initialize(program.state_init[name], tuple(program[i].shape),
                                          program.seed, name, dtype)
            for name, i in program.state.items()}


def read_params(path: str | Path, like: Mapping[str, np.ndarray],
                what: str = "param") -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            stored = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a params file written by graphc ({e})") from None
    out = {}
    for name, old in like.items():
        if name not in stored:
            raise InputError(f"{path}: has no array for {what} {name!r}")
        if stored[name].shape != old.shape:
            raise InputError(f"{path}: {what} {name!r} has shape {list(stored[name].shape)}, "
                             f"the model wants {list(old.shape)}")
        out[name] = stored[name].astype(old.dtype)
    return out


def available_memory() -> int:
    """Bytes of memory available now: MemAvailable of /proc/meminfo (Linux), else the
    physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 2**63  # unknown: do not refuse


def memory_need(program: Program, sizes: Mapping[str, int], dtype: np.dtype,
                kinds: tuple[str, ...] | None = None) -> tuple[int, Node | None, int]:
    """Bytes of all the program's values once its symbolic dims have `sizes` (the NumPy
    reference keeps every one; compiled backends keep fewer), the largest value and its
    bytes. Values whose dims are not all bound are left out."""
    total, largest, most = 0, None, 0
    for node in program:
        if kinds is not None and node.op not in kinds:
            continue
        n = 1
        for d in node.shape:
            if not isinstance(d, int):
                if not all(k in sizes for k in dimsmod.names(d)):
                    break
                d = dimsmod.evaluate(d, dict(sizes))
            n *= d
        else:
            size = n * (dtype.itemsize if node.dtype == FLOAT else np.dtype(node.dtype).itemsize)
            total += size
            if size > most:
                largest, most = node, size
    return total, largest, most


def check_memory(program: Program, sizes: Mapping[str, int], dtype: np.dtype,
                 what: str = "this call", advice: str = "use a smaller batch",
                 kinds: tuple[str, ...] | None = None) -> None:
    """Raise InputError when the values need more memory than is available."""
    total, node, most = memory_need(program, sizes, dtype, kinds)
    if node is None:
        return
    free = available_memory()
    if total > free:
        shape = [dimsmod.evaluate(d, dict(sizes)) for d in node.shape]
        kind = dtype.name if node.dtype == FLOAT else node.dtype
        batch = ", ".join(f"{k} = {v:,}" for k, v in sizes.items())
        raise InputError(f"{what}{f' ({batch})' if batch else ''} needs about "
                         f"{_bytes(total)} for its arrays, more than the {_bytes(free)} of "
                         f"memory available; the largest is {_label(program, node)} "
                         f"{kind}{shape} ({_bytes(most)}); {advice}")


def _label(program: Program, node: Node) -> str:
    if node.name is not None:
        return repr(node.name)
    if node.grad_of is not None and program[node.grad_of].name is not None:
        return f"the gradient of {program[node.grad_of].name!r}"
    return f"a {node.op} value"


def _bytes(n: int) -> str:
    unit = min(int(math.log(max(n, 1), 1024)), 4)
    return f"{n / 1024 ** unit:.1f} {('bytes', 'KiB', 'MiB', 'GiB', 'TiB')[unit]}"
