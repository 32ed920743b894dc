"""Training data: reading .npz and .csv files against a model's inputs, checking them
(one clear message per problem), batching, evaluation with a metric, and naming the first
node that turns NaN or inf."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphc.errors import InputError, did_you_mean
from graphc.inputs import bind_inputs
from graphc.ops import REGISTRY

CLASSIFIERS = ("cross_entropy", "binary_cross_entropy", "bce_with_logits")
EVAL_CHUNK = 4096  # rows per evaluation call: bounds memory on large validation sets


@dataclass
class Dataset:
    """Checked arrays by input name; `batched` ones are sliced along their first axis."""

    arrays: dict[str, np.ndarray]
    batched: tuple[str, ...]
    n: int | None  # rows; None when no input has a batch axis (one example)
    source: str

    def rows(self, idx: np.ndarray | None) -> int:
        return (self.n or 1) if idx is None else len(idx)

    def batch(self, idx: np.ndarray | None) -> dict[str, np.ndarray]:
        if idx is None:
            return dict(self.arrays)
        return {k: v[idx] if k in self.batched else v for k, v in self.arrays.items()}

    def sub(self, batch: Mapping[str, np.ndarray], part: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[part] if k in self.batched else v for k, v in batch.items()}

    def steps(self, batch_size: int, drop_last: bool = False) -> int:
        if self.n is None:
            return 1
        return self.n // batch_size if drop_last else -(-self.n // batch_size)

    def batches(self, batch_size: int, shuffle: bool, drop_last: bool,
                rng: np.random.Generator) -> Iterator[np.ndarray | None]:
        """Index arrays of the epoch's batches, shuffled once per epoch when asked."""
        if self.n is None:
            yield None
            return
        order = rng.permutation(self.n) if shuffle else np.arange(self.n)
        for start in range(0, self.n, batch_size):
            idx = order[start:start + batch_size]
            if drop_last and len(idx) < batch_size:
                break
            yield idx

    def split(self, fraction: float, rng: np.random.Generator) -> tuple[Dataset, Dataset]:
        """Hold out a random `fraction` of the rows for validation."""
        if self.n is None or not 0 < fraction < 1:
            raise InputError(f"validation={fraction}: a fraction in (0, 1) of rows that have a "
                             "batch axis")
        order = rng.permutation(self.n)
        k = max(1, int(round(self.n * fraction)))
        parts = []
        for idx, what in ((order[k:], self.source), (order[:k], f"{self.source} (held out)")):
            parts.append(Dataset(self.batch(idx), self.batched, len(idx), what))
        return parts[0], parts[1]


def prepare(model: Any, data: Any, what: str = "data", target: str | None = None) -> Dataset:
    """A checked Dataset from arrays by input name or from a .npz / .csv file."""
    if isinstance(data, Dataset):
        return data
    prog, graph = model.program, model.graph
    if isinstance(data, (str, Path)):
        arrays, source = read_file(data, model, target), str(data)
        names = list(arrays)
        arrays = {k: v for k, v in arrays.items() if k in prog.inputs}
    elif isinstance(data, Mapping):
        arrays, source = dict(data), what
        names = list(arrays)
        for k in arrays:
            if k not in prog.inputs:
                raise InputError(f"{what}: {k!r} is not an input of the model ("
                                 + (did_you_mean(k, prog.inputs) or
                                    f"inputs: {', '.join(prog.inputs)}") + ")")
    else:
        raise InputError(f"{what}: expected a dict of arrays named after the inputs, or a "
                         f".npz or .csv file, got {type(data).__name__}")
    used = {a for node in prog for a in node.args}
    needed = [k for k, i in prog.inputs.items() if i in used]
    missing = [k for k in needed if k not in arrays and "value" not in graph.inputs[k]]
    if missing:
        others = [a for a in names if a not in prog.inputs]
        hints = [h for k in missing if (h := _hint(k, others)) is not None]
        have = ", ".join(repr(k) for k in names) or "nothing"
        raise InputError(f"{source}: no array for input{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(repr(k) for k in missing)} (it has {have}"
                         + (f"; {hints[0]}" if hints else "") + ")")
    for k, v in list(arrays.items()):
        arrays[k] = _numbers(source, k, v)
    batched = tuple(k for k in arrays if graph.inputs[k].get("shape")
                    and isinstance(graph.inputs[k]["shape"][0], str))
    n = None
    for k in batched:
        if n is None:
            n, first = len(arrays[k]), k
        elif len(arrays[k]) != n:
            raise InputError(f"{source}: array {k!r} has {len(arrays[k])} rows, but {first!r} "
                             f"has {n}; every batched array needs one row per example")
    if n == 0:
        raise InputError(f"{source}: the arrays hold no rows")
    try:
        by_id = bind_inputs(graph, prog, arrays, model.dtype)
    except InputError as e:
        raise InputError(f"{source}: {e}") from None
    out = {k: by_id[prog.inputs[k]] for k in arrays if prog.inputs[k] in by_id}
    _check_labels(source, prog, out)
    return Dataset(out, tuple(k for k in batched if k in out), n, source)


def _hint(name: str, others: list[str]) -> str | None:
    same = [o for o in others if o.lower() == name.lower()]
    return f"did you mean {same[0]!r}?" if same else did_you_mean(name, others)


def _numbers(source: str, name: str, value: Any) -> np.ndarray:
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        raise InputError(f"{source}: array {name!r} is not a regular array of numbers") from None
    if a.dtype.kind not in "biuf":
        raise InputError(f"{source}: array {name!r} holds {a.dtype} values; expected numbers")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        where = np.argwhere(~np.isfinite(a))[0]
        raise InputError(f"{source}: array {name!r} holds {a[tuple(where)]} at index "
                         f"{list(map(int, where))}; clean the data first")
    return a


def _check_labels(source: str, prog: Any, arrays: dict[str, np.ndarray]) -> None:
    for name, i in prog.inputs.items():
        if name not in arrays:
            continue
        for node in prog:
            if node.op == "one_hot" and node.args[0] == i:
                k, a = node.attrs["classes"], arrays[name]
                bad = np.flatnonzero((a < 0) | (a >= k))
                if bad.size:
                    raise InputError(
                        f"{source}: array {name!r} holds label {a.flat[bad[0]]} at index "
                        f"{bad[0]}, but the model has {k} classes (labels 0..{k - 1})")


# ---- files -----------------------------------------------------------------------------

def read_file(path: str | Path, model: Any, target: str | None = None) -> dict[str, np.ndarray]:
    """Arrays by input name from an .npz (arrays named after the inputs) or a CSV file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise InputError(f"{p}: not a readable .npz file ({e})") from None
    if suffix == ".csv":
        return read_csv(p, model, target)
    raise InputError(f"{p}: data files are .npz (arrays named after the inputs) or .csv "
                     "(a header row; columns named after inputs, the rest stacked as features)")


def read_csv(path: Path, model: Any, target: str | None = None) -> dict[str, np.ndarray]:
    """Columns named after an input feed it; `target` names the column that feeds the loss's
    target input; the remaining columns, in order, form the one remaining input [B, k]."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    if len(rows) < 2:
        raise InputError(f"{path}: needs a header row and at least one data row")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    values = np.empty((len(body), len(header)))
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise InputError(f"{path}: line {i + 2} has {len(row)} cells, the header "
                             f"{len(header)}")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise InputError(f"{path}: line {i + 2}, column {header[j]!r}: {cell!r} is not "
                                 "a number") from None
    prog, graph = model.program, model.graph
    used = {a for node in prog for a in node.args}
    needed = [k for k, i in prog.inputs.items() if i in used and "value" not in graph.inputs[k]]
    columns = {c: values[:, j] for j, c in enumerate(header)}
    feeds: dict[str, list[str]] = {c: [c] for c in header if c in needed}
    if target is not None and target not in feeds:
        if target not in columns:
            raise InputError(f"{path}: no column named {target!r} ("
                             + (did_you_mean(target, header) or f"columns: {', '.join(header)}")
                             + ")")
        head = find_head(model)
        tin = head.target if head and head.target in prog.inputs else None
        if tin is None or tin in feeds:
            raise InputError(f"{path}: cannot tell which input the target column {target!r} "
                             "feeds; name the column after that input")
        feeds[tin] = [target]
    rest_inputs = [k for k in needed if k not in feeds]
    rest_cols = [c for c in header if c not in {x for v in feeds.values() for x in v}]
    if len(rest_inputs) == 1 and rest_cols:
        feeds[rest_inputs[0]] = rest_cols
    elif rest_inputs:
        raise InputError(f"{path}: no columns for input{'s' if len(rest_inputs) > 1 else ''} "
                         f"{', '.join(map(repr, rest_inputs))}; name a column after each input, "
                         "or leave one input to take the remaining columns"
                         + ("" if target else " (and name the target column with --target)"))
    out = {}
    for name, cols in feeds.items():
        a = np.stack([columns[c] for c in cols], axis=1)
        if len(graph.inputs[name].get("shape", [])) == 1 and a.shape[1] == 1:
            a = a[:, 0]
        out[name] = a
    return out


# ---- evaluation ------------------------------------------------------------------------

@dataclass
class Head:
    """The loss op that compares a prediction with a target, and the metric it implies."""

    op: str
    pred: str
    target: str
    metric: str  # "accuracy" or "rmse"

    def score(self, pred: np.ndarray, target: np.ndarray) -> float:
        if self.op == "cross_entropy":
            labels = target if target.ndim < pred.ndim else np.argmax(target, axis=-1)
            return float(np.mean(np.argmax(pred, axis=-1) == labels))
        if self.op in ("binary_cross_entropy", "bce_with_logits"):
            cut = 0.5 if self.op == "binary_cross_entropy" else 0.0
            return float(np.mean((pred > cut) == (target > 0.5)))
        return float(np.sqrt(np.mean(np.square(pred - target))))


def find_head(model: Any) -> Head | None:
    """The spec's loss when it is a loss op, else its only loss-op node; None if unclear."""
    g = model.graph
    nodes = {n["id"]: n for n in g.nodes}
    losses = [n for n in g.nodes if REGISTRY[n["op"]].family == "losses"]
    if g.loss in nodes and nodes[g.loss] in losses:
        losses = [nodes[g.loss]]
    if len(losses) != 1 or len(losses[0]["inputs"]) < 2:
        return None
    pred, target = losses[0]["inputs"][:2]
    if not isinstance(pred, str) or not isinstance(target, str):
        return None
    op = losses[0]["op"]
    return Head(op, pred, target, "accuracy" if op in CLASSIFIERS else "rmse")


def evaluate(model: Any, ds: Dataset, head: Head | None) -> tuple[float, float | None]:
    """Mean loss over the dataset and the head's metric (None without a head)."""
    names = [model.graph.loss]
    if head is not None:
        names.append(head.pred)
        if head.target not in ds.arrays:
            names.append(head.target)
    total, preds, targets = 0.0, [], []
    n = ds.n or 1
    chunks = [None] if ds.n is None else [np.arange(s, min(s + EVAL_CHUNK, n))
                                          for s in range(0, n, EVAL_CHUNK)]
    for idx in chunks:
        batch = ds.batch(idx)
        out = list(model.evaluate(names, **batch).values())
        total += float(out[0]) * ds.rows(idx)
        if head is not None:
            preds.append(out[1])
            targets.append(batch[head.target] if head.target in batch else out[2])
    metric = None
    if head is not None:
        join = (lambda xs: xs[0]) if len(chunks) == 1 else np.concatenate
        metric = head.score(join(preds), join(targets))
    return total / n, metric


def first_non_finite(model: Any, batch: Mapping[str, np.ndarray]) -> str | None:
    """Describe the first value (forward, then backward) that holds NaN or inf, by running
    the NumPy reference node by node; None when all are finite."""
    with np.errstate(all="ignore"):
        tr = model.trace(**batch)
    prog = tr.program
    for kind, nid in tr.steps:
        v = tr.by_id[nid]
        if not (isinstance(v, np.ndarray) and v.dtype.kind == "f") or np.all(np.isfinite(v)):
            continue
        node = prog[nid]
        bad = "NaN" if np.isnan(v).any() else "inf"
        if node.op == "param":
            return f"param {node.name!r}, which holds {bad}"
        args = ", ".join(_summary(prog, a, tr.by_id[a]) for a in node.args)
        if kind == "forward":
            label = repr(node.name) if node.name else f"an internal value of {node.group!r}"
            return (f"node {label} ({bad} from op {node.op}, id {nid}) in the forward pass; "
                    f"its inputs: {args}")
        if node.grad_of is not None:
            of = prog[node.grad_of].name or node.grad_of
            label = f"the gradient of {of!r}"
        else:
            label = f"a backward value of {node.group or node.op!r}"
        return f"{label} ({bad} from op {node.op}, id {nid}) in the backward pass; inputs: {args}"
    return None


def _summary(prog: Any, nid: str, v: np.ndarray) -> str:
    name = prog[nid].name or nid
    a = np.asarray(v)
    if a.size == 0 or a.dtype.kind not in "biuf":
        return repr(name)
    return f"{name!r} in [{np.min(a):.4g}, {np.max(a):.4g}]"
