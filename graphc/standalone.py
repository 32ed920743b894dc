"""The driver of standalone modules (`graphc compile`): a spec's forward, loss_and_grad and
train_step kernels in one file that needs only numpy and numba (`standalone`, or for a GPU
`standalone_cuda`), with its initial params.

It runs the passes, picks the optimizer and initializes params, so it sits beside runtime,
above the backends whose writer (numba_source) it calls.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc import optim
from graphc.backends.cache import safe_name
from graphc.backends.codegen import Poly
from graphc.backends.numba_source import Entry, KernelWriter, Training, module_source
from graphc.ir import FLOAT, Program, format_shape
from graphc.passes import forward_program, grad_program, prune
from graphc.runtime import init_params


def _call(name: str, value: str) -> str:
    """`x=X` for an identifier, `**{'a b': X}` for any other input name."""
    if name.isidentifier() and not keyword.iskeyword(name) and name not in ("params", "state"):
        return f"{name}={value}"
    return f"**{{{name!r}: {value}}}"


def standalone(graph: Any, dtype: str = "float32", optimizer: Any = None,
               dump: Callable[[str, Program], None] | None = None) -> dict[str, Any]:
    """A module for `graph` that needs only numpy and numba: its source, module name,
    initial params, and what it holds (kernels, sizes, costs) for `graphc compile`."""
    dt = np.dtype(dtype)
    name = safe_name(graph.name)
    fwd = forward_program(graph, dump=dump)
    outputs = prune(fwd, fwd.outputs.values())  # forward needs no targets or labels
    entries = [Entry("forward", outputs, list(fwd.outputs.values()))]
    if fwd.loss is not None:
        prog = grad_program(fwd, (), keep_outputs=False, dump=dump)
        results = [prog.loss, *(prog.grads[p] for p in prog.params)]
        entries.append(Entry("loss_and_grad", prog, results))
        if prog.params:
            if optimizer is None:
                optimizer = optim.from_spec((graph.train or {}).get("optimizer", "sgd"))
            # full: hyper-parameters that are 0 now keep their statements (see optim)
            training = Training(type(optimizer).__name__, optimizer.update_lines(full=True),
                                tuple(optimizer.slots), dict(optimizer.hyper),
                                dict(optimizer.slot_init), tuple(optimizer.fixed_zero))
            entries.append(Entry("train_step", prog, results, training))
    def example(prog: Program) -> str:
        used = {a for n in prog for a in n.args}
        return ", ".join(_call(n, n.upper() if n.isidentifier() else f"X{k}")
                         for k, (n, i) in enumerate(fwd.inputs.items()) if i in used)

    lines = ["", "Usage:", "", f"    import {name} as model",
             f"    params = model.init_params()  # from {name}_params.npz beside this file",
             f"    outputs = model.forward(params, {example(outputs)})  # by output name"]
    if len(entries) > 1:
        lines.append(f"    loss, grads = model.loss_and_grad(params, {example(fwd)})")
    if len(entries) > 2:
        lines += [f"    state = model.init_state(params)  # {optimizer!r}",
                  "    state.hyper['lr'] = 0.01  # hyper-parameters change without recompiling",
                  f"    loss = model.train_step(params, state, {example(fwd)})  # in place"]
    lines += ["", "Inputs:  " + ", ".join(f"{n!r} {_kind(fwd[i].dtype, dt)}"
                                            f"{format_shape(fwd[i].shape)}"
                                            for n, i in fwd.inputs.items()),
              "Outputs: " + ", ".join(repr(n) for n in fwd.outputs),
              "Kernels are compiled by Numba on first use and cached in __pycache__ beside",
              "this file; a new process loads them from there (delete it to recompile)."]
    source = module_source(graph.name, dt, entries, doc="\n".join(lines),
                           params_file=f"{name}_params.npz")
    summary = []
    for e in entries:
        w = KernelWriter(e, dt)
        flops, moved, fused = w.plan.costs()
        kinds = [s.kind for s in w.plan.steps]
        plan = [f"{e.name}: {s.kind} {' '.join(s.nodes)}"
                + (f" over {format_shape(s.shape)}" if s.kind == "loop" else "")
                for s in w.plan.steps]
        summary.append({"entry": e.name, "plan": plan, "loops": kinds.count("loop"),
                        "matmuls": kinds.count("matmul"),
                        "kernels": sum(k not in ("scalar", "alias") for k in kinds),
                        "fused": fused, "flops": flops, "bytes": moved.times(dt.itemsize),
                        "dims": {w.plan.dim(s): s for s in w.plan.dims}})
        if e.train:
            n = int(w.n_params.value({}))
            ops = sum(line.count(op) for line in e.train.lines for op in "+-*/")
            summary[-1]["flops"] = flops.plus(Poly({(): n * max(ops, 1)}))
            summary[-1]["bytes"] = summary[-1]["bytes"].plus(
                Poly({(): n * (3 + 2 * len(e.train.slots)) * dt.itemsize}))
    params = init_params(fwd, dt)
    return {"name": name, "source": source, "params": params, "entries": summary,
            "optimizer": optimizer, "dtype": dt}


def _kind(kind: str, dtype: np.dtype) -> str:
    return dtype.name if kind == FLOAT else kind


def standalone_cuda(graph: Any, dtype: str = "float32", optimizer: Any = None,
               dump: Callable[[str, Program], None] | None = None,
               device: str = "gpu") -> dict[str, Any]:
    """The CUDA module of `graphc compile --backend cuda`: forward, loss_and_grad and
    train_step entries (launch sizes for a GPU), its source and initial params."""
    from graphc.backends.cuda.writer import EntryWriter
    from graphc.backends.numba_cuda import DICT_API, SIZES
    from graphc.backends.numba_cuda import module_source as cuda_module_source

    dt = np.dtype(dtype)
    fwd = forward_program(graph, dump=dump)
    outputs = prune(fwd, fwd.outputs.values())
    entries: list[tuple] = [("forward", outputs, list(fwd.outputs.values()), None)]
    if fwd.loss is not None:
        prog = grad_program(fwd, (), keep_outputs=False, dump=dump)
        results = [prog.loss, *(prog.grads[p] for p in prog.params)]
        entries.append(("loss_and_grad", prog, results, None))
        if prog.params:
            optimizer = optimizer or optim.from_spec((graph.train or {}).get("optimizer",
                                                                             "sgd"))
            training = Training(type(optimizer).__name__, optimizer.update_lines(full=True),
                                tuple(optimizer.slots), dict(optimizer.hyper),
                                dict(optimizer.slot_init))
            entries.append(("train_step", prog, results, training))
    name = safe_name(graph.name)
    doc = ("\nUsage:\n\n"
           f"    import {name} as model\n"
           f"    params = model.init_params()  # from {name}_params.npz beside this file\n"
           "    outputs = model.forward(params, x=X)  # by output name\n"
           + ("    loss, grads = model.loss_and_grad(params, x=X, y=Y)\n"
              if len(entries) > 1 else "")
           + "\nor call(entry, {node id: host array}) for any entry; train_step's device state"
             "\nis kept by graphc's CudaBackend (graphc.compile(spec, backend='cuda')).\n")
    source = cuda_module_source(graph.name, dt, entries, device, doc) + DICT_API.format(
        outputs=repr(tuple(fwd.outputs)), params_file=repr(f"{name}_params.npz"))
    summary = []
    for entry, prog, results, train in entries:
        w = EntryWriter(entry, prog, results, dt.name, SIZES[device]["rblock"], train)
        kinds = [k.kind for k in w.sched.kernels]
        summary.append({"entry": entry, "plan": w.sched.dump(entry).split("\n"),
                        "loops": kinds.count("loop"), "matmuls": kinds.count("gemm"),
                        "kernels": sum(k not in ("alias", "check") for k in kinds),
                        "fused": sum(len(k.storage) - 1 for k in w.sched.kernels
                                     if k.kind == "loop" and k.storage),
                        "flops": w.plan.costs()[0],
                        "bytes": w.plan.costs()[1].times(dt.itemsize),
                        "dims": {w.plan.dim(s): s for s in w.plan.dims}})
    return {"name": name, "source": source, "params": init_params(fwd, dt),
            "entries": summary, "optimizer": optimizer, "dtype": dt, "module_entries": entries}
