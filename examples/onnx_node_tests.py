"""ONNX's own node tests (`onnx.backend.test`) through graphc's ONNX backend, counted by
operator family: passed, failed, skipped for a dtype graphc lacks, skipped for an operator
feature graphc lacks (each with its reason). tests/test_onnx.py runs the same selection.

    python examples/onnx_node_tests.py [--backend numpy|cpu] [--reasons]
"""

from __future__ import annotations

import argparse
import collections
import re
import unittest
import warnings

# the operator families graphc has, by the names of ONNX's test cases (`test_<op>_...`);
# ConvTranspose, MaxUnpool and LRN are other operators, which graphc does not have yet
FAMILIES = {
    "elementwise": r"add|sub|mul|div|pow|neg|abs|reciprocal|exp|log|sqrt|max|min|sum|mean",
    "activations": r"relu|sigmoid|tanh|softplus|mish|leakyrelu|elu|selu|gelu|prelu|"
                   r"hardsigmoid|clip|swish",
    "gemm, matmul": r"gemm|matmul",
    "softmax": r"softmax|logsoftmax",
    "reductions": r"reduce_(sum|mean|max|min|l1|l2|sum_square)",
    "shape": r"reshape|transpose|concat|flatten|squeeze|unsqueeze|identity|expand",
    "conv, pooling": r"conv(?!transpose)|averagepool|maxpool|globalaveragepool|globalmaxpool",
    "batch norm, dropout": r"batchnorm|dropout",
    "softmax cross-entropy": r"sce",
}
PATTERN = r"test_(" + "|".join(f"(?:{p})" for p in FAMILIES.values()) + r")(_|$)"
# a dtype graphc lacks (its integer tensors are class labels, without arithmetic)
DTYPE = re.compile(r"graphc has no [a-z0-9, ]+ tensors|of integer tensors")


def family(test_id: str) -> str:
    name = test_id.rsplit(".", 1)[-1][len("test_"):]
    return next(f for f, p in FAMILIES.items() if re.match(f"(?:{p})(_|$)", name))


def run(backend: str = "numpy") -> dict[str, collections.Counter]:
    """Counts by family: passed, failed (failures and errors), dtype and feature skips;
    and under "reasons", "failures" and "passed tests" the skip reasons and test names."""
    with warnings.catch_warnings():  # ONNX's case generators warn about casts
        warnings.simplefilter("ignore")
        import onnx.backend.test

        import graphc.onnx.backend as gb

    class Backend(gb.GraphcBackend):
        @classmethod
        def prepare(cls, model, device="CPU", **kwargs):
            return super().prepare(model, device, backend=backend, **kwargs)

    with warnings.catch_warnings(), open("/dev/null", "w") as devnull:
        warnings.simplefilter("ignore")
        tests = onnx.backend.test.BackendTest(Backend, __name__)
        tests.include(PATTERN)
        tests.exclude("cuda")
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(tests.tests)
        ids = [t.id() for t in _tests(suite)]  # running empties the suite
        result = unittest.TextTestRunner(verbosity=0, stream=devnull).run(suite)
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    skipped = {}
    for test, reason in result.skipped:
        if "pattern" not in reason:  # not selected
            skipped[test.id()] = reason
            fam = family(test.id())
            counts[fam]["dtype skips" if DTYPE.search(reason) else "feature skips"] += 1
            counts["reasons"][_short(reason)] += 1
    failed = {t.id(): tb for t, tb in result.failures + result.errors}
    for test_id, tb in failed.items():
        counts[family(test_id)]["failed"] += 1
        counts["failures"][f"{test_id}: {tb.strip().splitlines()[-1]}"] += 1
    unselected = {t.id() for t, reason in result.skipped if "pattern" in reason}
    for test_id in ids:
        if test_id not in unselected | skipped.keys() | failed.keys():
            counts[family(test_id)]["passed"] += 1
            counts["passed tests"][test_id.rsplit(".", 1)[-1]] += 1
    return counts


def _short(reason: str) -> str:
    """A skip reason without the node's name, so that alike reasons count together."""
    return re.sub(r"ONNX node '[^']*': ", "", reason).split(" (")[0]


def _tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _tests(t)
        elif t is not None:
            yield t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="numpy", choices=["numpy", "cpu"])
    ap.add_argument("--reasons", action="store_true", help="list the skip reasons")
    args = ap.parse_args()
    counts = run(args.backend)
    cols = ("passed", "failed", "dtype skips", "feature skips")
    print(f"{'family':<22}" + "".join(f"{c:>15}" for c in cols))
    total = collections.Counter()
    for fam in FAMILIES:
        total.update(counts[fam])
        print(f"{fam:<22}" + "".join(f"{counts[fam][c]:>15}" for c in cols))
    print(f"{'all':<22}" + "".join(f"{total[c]:>15}" for c in cols))
    for line in counts["failures"]:
        print("FAILED", line)
    if args.reasons:
        for reason, n in counts["reasons"].most_common():
            print(f"{n:>4}  {reason}")


if __name__ == "__main__":
    main()
