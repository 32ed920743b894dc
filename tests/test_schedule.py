"""The schedule pass: the CPU target keeps today's plan exactly; the CUDA target gives each
reduction a kernel of its own (nothing races) and checks inputs before any kernel."""

from pathlib import Path

import pytest
from click.testing import CliRunner

import graphc
from graphc.cli import main
from graphc.passes import forward_program, grad_program
from graphc.passes.plan import Plan
from graphc.passes.schedule import CPU, CUDA, races, schedule

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.json"))


def train_program(name: str):
    fwd = forward_program(graphc.load(ROOT / "examples" / f"{name}.json"))
    prog = grad_program(fwd, (), keep_outputs=False)
    return prog, [prog.loss, *(prog.grads[p] for p in prog.params)]


# the MNIST train step's plan before the schedule pass existed (main at 396d7d6)
MNIST_CPU_STEPS = [
    ("scalar", "v18"), ("scalar", "v21"), ("matmul", "v3"), ("loop", "v5 v6"),
    ("matmul", "v8"), ("loop", "v10 v12"), ("opaque", "v13"), ("loop", "v15"),
    ("loop", "v17 v23"), ("loop", "v27 v29"), ("loop", "v31 v32"), ("matmul", "v34"),
    ("matmul", "v36"), ("loop", "v38 v39"), ("matmul", "v43")]


def test_cpu_schedule_is_the_plan_of_before():
    prog, results = train_program("mnist_mlp")
    plan = Plan(prog, results, "F")
    assert [(s.kind, " ".join(s.nodes)) for s in plan.steps] == MNIST_CPU_STEPS
    sched = schedule(prog, results, CPU, "F")
    assert [(k.kind, " ".join(k.nodes)) for k in sched.kernels] == [
        ("gemm" if kind == "matmul" else kind, nodes) for kind, nodes in MNIST_CPU_STEPS]


@pytest.mark.parametrize("name", [e for e in EXAMPLES if e not in ("batch_norm_modes",
                                                                    "dropout_modes")])
def test_cpu_schedule_records_every_plan_step(name):
    try:
        prog, results = train_program(name)
    except Exception:  # no loss: the forward program
        fwd = forward_program(graphc.load(ROOT / "examples" / f"{name}.json"))
        prog, results = fwd, list(fwd.outputs.values())
    plan = Plan(prog, results, None)
    sched = schedule(prog, results, CPU)
    assert [(s.kind, s.nodes, tuple(s.shape)) for s in plan.steps] == \
        [(s.kind, s.nodes, tuple(s.shape)) for s in (k.step for k in sched.kernels)]


def test_cuda_gives_every_reduction_a_kernel_of_its_own():
    prog, results = train_program("mnist_mlp")
    cpu = schedule(prog, results, CPU, "F")
    cuda = schedule(prog, results, CUDA)
    # on the CPU the bias gradients share a loop with stores over the batch axis
    assert sum(bool(races(k, cpu.plan)) for k in cpu.kernels) >= 3
    assert not any(races(k, cuda.plan) for k in cuda.kernels)
    reducing = [k for k in cuda.kernels if k.reduced]
    assert len(reducing) == 5  # the loss's sum and mean, a softmax-grad sum, two biases
    for k in reducing:
        assert len(k.nodes) == 1 and cuda.plan.kinds[k.nodes[0]] in ("reduce", "matmul")
        assert "tree" in k.strategy
    for k in cuda.kernels:
        if k.kind == "loop" and not k.reduced:
            assert k.parallel == tuple(range(len(k.domain)))


def test_cuda_checks_inputs_before_any_kernel_and_never_raises_inside():
    prog, results = train_program("mnist_mlp")
    sched = schedule(prog, results, CUDA, update=True)
    assert sched.kernels[0].kind == "check" and sched.kernels[0].reads == ["v1"]
    assert [k.kind for k in sched.kernels].count("check") == 1
    assert sched.kernels[-1].kind == "update"
    assert sched.kernels[-1].writes == list(prog.params.values())
    text = sched.dump("train_step")
    assert "kernel 0: check one_hot" in text and "raise" not in text


def test_storage_says_where_each_value_lives():
    prog, results = train_program("mnist_mlp")
    sched = schedule(prog, results, CUDA)
    where = {n: s for k in sched.kernels for n, s in k.storage.items()}
    assert where[results[0]] == "result 0"
    assert where[results[1]] == "result 1"
    assert where["v3"].startswith("workspace")
    assert "inline" in where.values()


def test_dump_after_schedule_on_the_command_line(tmp_path):
    spec = ROOT / "examples" / "mnist_mlp.json"
    r = CliRunner().invoke(main, ["compile", str(spec), "-o", str(tmp_path),
                                  "--dump-after", "schedule"])
    assert r.exit_code == 0, r.output
    assert "# schedule for cpu: forward" in r.output
    assert "# schedule for cpu: train_step" in r.output
    assert "reduced (0,) (sequential loops)" in r.output
    assert "kernel 15: update" in r.output
