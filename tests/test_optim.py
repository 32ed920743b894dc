"""Optimizers against torch.optim step for step, their update lines, from_spec, clipping."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from graphc import optim
from graphc.errors import SpecError
from graphc.ops.registry import EXPR_FUNCTIONS

try:
    import torch
except ImportError:  # the torch-free tests below still run; tests/ci_guard.py fails CI on it
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch, the reference "
                                 "(pip install torch); see tests/test_optim_by_hand.py")

TORCH_SLOT = {"state_sum": "sum"}  # graphc slot name -> torch state key, where they differ

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.8}),  # the lectures' moving average
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.2}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.003, "centered": True, "momentum": 0.5, "eps": 1e-6}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True, "maximize": True}),
]


def _grads(rng, shapes, step):
    # gradients that shrink and flip sign now and then, so that amsgrad's max matters
    return {k: rng.normal(size=s) * (1.0 + 2.0 * (step % 3 == 0)) for k, s in shapes.items()}


def _run_both(name, kwargs, steps=7, dtype=np.float64, lr_at=None):
    rng = np.random.default_rng(0)
    shapes = {"W": (3, 4), "b": (4,)}
    ours = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
    theirs = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in ours.items()}
    opt = getattr(optim, name)(**kwargs)
    topt = getattr(torch.optim, name)(list(theirs.values()), **kwargs)
    for step in range(steps):
        if lr_at and step in lr_at:
            opt.lr = lr_at[step]
            topt.param_groups[0]["lr"] = lr_at[step]
        grads = _grads(rng, shapes, step)
        for k, tp in theirs.items():
            tp.grad = torch.tensor(grads[k].astype(dtype))
        topt.step()
        opt.step(ours, {k: g.astype(dtype) for k, g in grads.items()})
        yield step, opt, ours, topt, theirs


@needs_torch
@pytest.mark.parametrize("name,kwargs", CASES, ids=lambda c: str(c))
def test_matches_torch_step_for_step(name, kwargs):
    for step, opt, ours, topt, theirs in _run_both(name, kwargs):
        for k, tp in theirs.items():
            np.testing.assert_allclose(ours[k], tp.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} {kwargs}: {k} after step {step + 1}")
            tstate = topt.state[tp]
            for slot in opt.slots:
                np.testing.assert_allclose(
                    opt.state[k][slot], tstate[TORCH_SLOT.get(slot, slot)].numpy(),
                    rtol=1e-10, atol=1e-12, err_msg=f"{name}: {k}/{slot} after step {step + 1}")
    assert opt.t == step + 1


@needs_torch
@pytest.mark.parametrize("name,kwargs", [CASES[2], CASES[8], CASES[12], CASES[16]],
                         ids=lambda c: str(c))
def test_float32_matches_torch(name, kwargs):
    for _step, _opt, ours, _topt, theirs in _run_both(name, kwargs, dtype=np.float32):
        for k, tp in theirs.items():
            assert ours[k].dtype == np.float32
            np.testing.assert_allclose(ours[k], tp.detach().numpy(), rtol=2e-5, atol=2e-6)


@needs_torch
@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_changing_lr_between_steps_takes_effect(name):
    kwargs = {"lr": 0.01, "momentum": 0.9} if name != "Adam" else {"lr": 0.01}
    for _step, _opt, ours, _topt, theirs in _run_both(name, kwargs, lr_at={2: 0.1, 4: 0.001}):
        for k, tp in theirs.items():
            np.testing.assert_allclose(ours[k], tp.detach().numpy(), rtol=1e-10)


def _names(tree):
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


ALLOWED_NODES = (ast.Module, ast.Assign, ast.Name, ast.Load, ast.Store, ast.BinOp, ast.UnaryOp,
                 ast.Compare, ast.Call, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div,
                 ast.Pow, ast.USub, ast.Eq, ast.Lt, ast.Gt, ast.LtE, ast.GtE, ast.NotEq)


@pytest.mark.parametrize("name,kwargs", CASES, ids=lambda c: str(c))
def test_update_lines_stay_in_the_expression_language(name, kwargs):
    opt = getattr(optim, name)(**kwargs)
    known = {"p", "g", "t", *opt.slots, *opt.hyper}
    assigned = set()
    for line in opt.update_lines():
        tree = ast.parse(line)
        (stmt,) = tree.body
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
        assert isinstance(stmt.targets[0], ast.Name), line
        for node in ast.walk(tree):
            assert isinstance(node, ALLOWED_NODES), f"{line}: {type(node).__name__}"
            if isinstance(node, ast.Call):
                assert isinstance(node.func, ast.Name) and node.func.id in EXPR_FUNCTIONS
        reads = _names(stmt.value) - set(EXPR_FUNCTIONS)
        assert reads <= known | assigned, f"{line}: reads {reads - known - assigned}"
        assigned.add(stmt.targets[0].id)
    assert "p" in assigned and set(opt.slots) <= assigned


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(1)
    params = {"w": rng.normal(size=5)}
    grads = [{"w": rng.normal(size=5)} for _ in range(6)]
    a = optim.Adam(lr=0.1, amsgrad=True)
    for g in grads[:3]:
        a.step(params, g)
    saved, p_saved = a.state_dict(), {"w": params["w"].copy()}
    assert set(saved) >= {"w/exp_avg", "w/exp_avg_sq", "w/max_exp_avg_sq", "t", "hyper/lr"}
    b = optim.Adam(lr=0.5, amsgrad=True)
    b.load_state_dict(saved)
    assert b.lr == 0.1 and b.t == 3
    for g in grads[3:]:
        a.step(params, g)
        b.step(p_saved, g)
    np.testing.assert_array_equal(params["w"], p_saved["w"])


def test_adagrad_initial_accumulator_is_in_the_state():
    opt = optim.Adagrad(initial_accumulator_value=0.5)
    opt.init_state({"w": np.zeros(3)})
    np.testing.assert_array_equal(opt.state["w"]["state_sum"], 0.5)


def test_from_spec_builds_and_overrides():
    opt = optim.from_spec({"name": "Adam", "lr": 0.01, "betas": [0.8, 0.99]})
    assert isinstance(opt, optim.Adam) and opt.betas == (0.8, 0.99) and opt.lr == 0.01
    assert optim.from_spec("adamw").hyper["weight_decay"] == 0.01  # PyTorch's default
    opt = optim.from_spec({"name": "sgd", "lr": 0.1, "momentum": 0.9}, lr=0.5)
    assert opt.lr == 0.5 and opt.hyper["momentum"] == 0.9
    again = optim.from_spec(opt.to_spec())
    assert again.update_lines() == opt.update_lines() and again.hyper == opt.hyper


@pytest.mark.parametrize("spec,words", [
    ({"name": "adma"}, ["train.optimizer.name", "unknown optimizer 'adma'", "did you mean 'adam'"]),
    ({"lr": 0.1}, ["train.optimizer", "needs a \"name\""]),
    ({"name": "sgd", "momentun": 0.9}, ["train.optimizer.momentun", "did you mean 'momentum'"]),
    ({"name": "sgd", "lr": "fast"}, ["train.optimizer.lr", "expected a number"]),
    ({"name": "sgd", "lr": -1}, ["train.optimizer.lr", "the learning rate must be a positive"]),
    ({"name": "sgd", "momentum": -1}, ["train.optimizer.momentum", "momentum must be >= 0"]),
    ({"name": "adam", "betas": [0.9, 1.5]}, ["betas[1] must lie in [0, 1)"]),
    ({"name": "sgd", "nesterov": True}, ["Nesterov momentum needs momentum > 0"]),
    ({"name": "rmsprop", "centered": "yes"}, ["train.optimizer.centered", "true or false"]),
    (3, ["expected an object"]),
])
def test_from_spec_errors_name_the_place(spec, words):
    with pytest.raises(SpecError) as e:
        optim.from_spec(spec)
    for w in words:
        assert w in str(e.value)


@needs_torch
@pytest.mark.parametrize("max_norm,max_value", [(0.5, None), (None, 0.3), (0.5, 0.3),
                                                 (100.0, None)])
def test_clipping_matches_torch_nn_utils(max_norm, max_value):
    rng = np.random.default_rng(3)
    grads = {"a": rng.normal(size=(4, 3)), "b": rng.normal(size=7)}
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
               for g in grads.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)
    ours = dict(grads)
    norm = optim.clip_gradients(ours, max_norm, max_value)
    if max_value is not None:
        torch.nn.utils.clip_grad_value_(tensors, max_value)
    tnorm = torch.nn.utils.clip_grad_norm_(tensors, max_norm if max_norm else float("inf"))
    assert norm == pytest.approx(float(tnorm), rel=1e-12)
    for t, g in zip(tensors, ours.values()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)
    if max_norm is not None:
        after = np.sqrt(sum(np.sum(g ** 2) for g in ours.values()))
        assert after <= max_norm + 1e-9


# ---- schedules against torch.optim.lr_scheduler ---------------------------------------

from graphc import schedules  # noqa: E402

SCHEDULE_CASES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}, "SGD"),
    ("MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.3}, "SGD"),
    ("ConstantLR", {"factor": 0.5, "total_iters": 3}, "SGD"),
    ("LinearLR", {"start_factor": 0.1, "total_iters": 4}, "SGD"),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.2, "total_iters": 6}, "Adam"),
    ("ExponentialLR", {"gamma": 0.9}, "SGD"),
    ("PolynomialLR", {"total_iters": 6, "power": 2.0}, "SGD"),
    ("CosineAnnealingLR", {"T_max": 5, "eta_min": 0.01}, "SGD"),  # past T_max: it climbs back
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 20}, "SGD"),
    ("OneCycleLR", {"max_lr": 0.01, "total_steps": 17, "three_phase": True,
                    "anneal_strategy": "linear"}, "Adam"),
    ("OneCycleLR", {"max_lr": 0.1, "epochs": 4, "steps_per_epoch": 5, "pct_start": 0.25,
                    "cycle_momentum": False}, "Adagrad"),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "mode": "triangular2"},
     "RMSprop"),
    ("CyclicLR", {"base_lr": 0.001, "max_lr": 0.01, "step_size_up": 2, "step_size_down": 5,
                  "mode": "exp_range", "gamma": 0.9}, "AdamW"),
]

OPT_ARGS = {"SGD": {"lr": 0.1, "momentum": 0.9}, "Adam": {"lr": 0.01}, "AdamW": {"lr": 0.01},
            "Adagrad": {"lr": 0.1}, "RMSprop": {"lr": 0.01, "momentum": 0.5}}


def _pair(opt_name):
    w = torch.zeros(2, requires_grad=True)
    return (getattr(optim, opt_name)(**OPT_ARGS[opt_name]),
            getattr(torch.optim, opt_name)([w], **OPT_ARGS[opt_name]))


def _momentum(opt, topt):
    group = topt.param_groups[0]
    if "beta1" in opt.hyper:
        return opt.hyper["beta1"], group["betas"][0]
    return opt.hyper.get("momentum"), group.get("momentum")


def _compare(ours, theirs, opt, topt, steps, what):
    for step in range(steps + 1):
        if step:
            topt.step()
            theirs.step()
            ours.step()
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12, abs=1e-15), \
            f"{what}: lr after {step} steps"
        m, tm = _momentum(opt, topt)
        assert (m is None) == (tm is None), f"{what}: momentum {m} vs torch's {tm}"
        if tm is not None:  # Adagrad has none; pytest >= 9.2 refuses None == approx(None)
            assert m == pytest.approx(tm, rel=1e-12), f"{what}: momentum after {step} steps"


@needs_torch
@pytest.mark.parametrize("name,kwargs,opt_name", SCHEDULE_CASES, ids=lambda c: str(c))
def test_schedule_matches_torch(name, kwargs, opt_name):
    opt, topt = _pair(opt_name)
    ours = getattr(schedules, name)(opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    steps = kwargs.get("total_steps") or (20 if name == "OneCycleLR" else 17)
    _compare(ours, theirs, opt, topt, steps, name)


@needs_torch
def test_sequential_and_chained_match_torch():
    ls = torch.optim.lr_scheduler
    opt, topt = _pair("SGD")
    ours = schedules.SequentialLR(opt, [schedules.LinearLR(opt, 0.1, total_iters=3),
                                        schedules.CosineAnnealingLR(opt, T_max=10)], [3])
    theirs = ls.SequentialLR(topt, [ls.LinearLR(topt, 0.1, total_iters=3),
                                    ls.CosineAnnealingLR(topt, T_max=10)], [3])
    _compare(ours, theirs, opt, topt, 16, "warm-up then cosine")

    opt, topt = _pair("Adam")
    ours = schedules.SequentialLR(opt, [schedules.ConstantLR(opt, 0.5, total_iters=2),
                                        schedules.ExponentialLR(opt, 0.8),
                                        schedules.StepLR(opt, 2, 0.5)], [4, 8])
    theirs = ls.SequentialLR(topt, [ls.ConstantLR(topt, 0.5, total_iters=2),
                                    ls.ExponentialLR(topt, 0.8), ls.StepLR(topt, 2, 0.5)], [4, 8])
    _compare(ours, theirs, opt, topt, 14, "constant, exponential, step")

    opt, topt = _pair("SGD")
    ours = schedules.ChainedScheduler([schedules.LinearLR(opt, 0.25, total_iters=4),
                                       schedules.ExponentialLR(opt, 0.9)])
    theirs = ls.ChainedScheduler([ls.LinearLR(topt, 0.25, total_iters=4),
                                  ls.ExponentialLR(topt, 0.9)])
    _compare(ours, theirs, opt, topt, 12, "warm-up x exponential")


@needs_torch
@pytest.mark.parametrize("kwargs", [
    {"factor": 0.5, "patience": 0},  # new bob
    {"factor": 0.1, "patience": 2, "cooldown": 1, "min_lr": 0.002},
    {"mode": "max", "factor": 0.5, "patience": 1, "threshold": 0.1, "threshold_mode": "abs"},
])
def test_reduce_on_plateau_matches_torch(kwargs):
    opt, topt = _pair("SGD")
    ours = schedules.ReduceLROnPlateau(opt, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    metrics = [1.0, 0.8, 0.81, 0.79, 0.9, 0.95, 0.7, 0.7, 0.7, 0.71, 0.72, 0.5, 0.6, 0.6, 0.6]
    for i, m in enumerate(metrics):
        topt.step()
        ours.step(m)
        theirs.step(m)
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12), f"epoch {i}"


def test_newbob_halves_when_validation_loss_rises():
    opt = optim.SGD(lr=0.8)
    s = schedules.from_spec({"name": "newbob"}, opt)
    rates = []
    for val in [1.0, 0.9, 0.95, 0.8, 0.85, 0.86]:
        s.step(val)
        rates.append(opt.lr)
    assert rates == [0.8, 0.8, 0.4, 0.4, 0.2, 0.1]


def test_from_spec_fills_in_epochs_and_steps():
    opt = optim.SGD(lr=0.1, momentum=0.9)
    s = schedules.from_spec({"name": "onecycle", "max_lr": 1.0}, opt, epochs=3,
                            steps_per_epoch=4)
    assert s.total_steps == 12 and s.interval == "batch" and opt.lr == pytest.approx(0.04)
    s = schedules.from_spec({"name": "CosineAnnealingLR"}, optim.SGD(lr=0.1), epochs=7)
    assert s.T_max == 7 and s.interval == "epoch"
    opt = optim.SGD(lr=0.1)
    s = schedules.from_spec({"name": "sequential", "milestones": [2], "interval": "batch",
                             "schedulers": [{"name": "warmup", "start_factor": 0.5,
                                             "total_iters": 2}, {"name": "exponential",
                                                                 "gamma": 0.5}]}, opt)
    assert isinstance(s, schedules.SequentialLR) and s.interval == "batch"
    seen = [opt.lr]
    for _ in range(4):
        s.step()
        seen.append(opt.lr)
    assert seen == pytest.approx([0.05, 0.075, 0.1, 0.05, 0.025])


@pytest.mark.parametrize("spec,words", [
    ({"name": "cosin", "T_max": 3}, ["train.schedule.name", "did you mean 'cosine'"]),
    ({"name": "step", "step_sise": 3}, ["train.schedule.step_sise", "did you mean 'step_size'"]),
    ({"name": "step"}, ["train.schedule", "step_size"]),
    ({"name": "step", "step_size": 0}, ["step_size must be a positive integer"]),
    ({"name": "onecycle", "max_lr": 0.1}, ["total_steps"]),
    ({"name": "chain", "schedulers": [{"name": "plateau"}]}, ["cannot hold ReduceLROnPlateau"]),
    ({"name": "sequential", "milestones": [], "schedulers": [{"name": "exponential",
      "gamma": 0.5}, {"name": "step", "step_size": 1}]}, ["one milestone fewer"]),
    ({"name": "chain", "schedulers": [{"name": "exponential", "gamma": 0.5}, {
      "name": "cyclic", "base_lr": 0.1, "max_lr": 1, "cycle_momentum": False}]},
     ["once per epoch and once per batch"]),
    ({"name": "step", "step_size": 2, "interval": "hourly"}, ["train.schedule.interval"]),
    ({"step_size": 2}, ["train.schedule", "\"name\""]),
])
def test_schedule_spec_errors(spec, words):
    with pytest.raises(SpecError) as e:
        schedules.from_spec(spec, optim.SGD(lr=0.1))
    for w in words:
        assert w in str(e.value)


def test_onecycle_refuses_to_cycle_a_momentum_the_update_lacks():
    with pytest.raises(ValueError, match="momentum=0"):
        schedules.OneCycleLR(optim.SGD(lr=0.1), max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="no momentum or beta1"):
        schedules.OneCycleLR(optim.Adagrad(), max_lr=1.0, total_steps=5)


@needs_torch
@pytest.mark.parametrize("name,fn", [
    ("LambdaLR", lambda e: 0.95 ** e),
    ("LambdaLR", lambda e: min(1.0, (e + 1) / 4) * (0.5 if e >= 8 else 1.0)),  # warm-up, drop
    ("MultiplicativeLR", lambda e: 0.9),
    ("MultiplicativeLR", lambda e: 1.0 if e % 3 else 0.5),
], ids=["lambda-exp", "lambda-warmup", "mult-const", "mult-every-3"])
def test_function_schedules_match_torch(name, fn):
    opt, topt = _pair("SGD")
    ours = getattr(schedules, name)(opt, fn)
    theirs = getattr(torch.optim.lr_scheduler, name)(topt, fn)
    _compare(ours, theirs, opt, topt, 12, name)
    assert "lr_lambda" not in ours.state_dict()


def test_lambda_lr_refuses_a_non_function():
    with pytest.raises(TypeError, match="lr_lambda must be a function"):
        schedules.LambdaLR(optim.SGD(lr=0.1), 0.5)


@needs_torch
@pytest.mark.parametrize("full", [False, True])
def test_momentum_switched_off_midway_matches_torch(full):
    rng = np.random.default_rng(1)
    p = rng.normal(size=5)
    ours, tp = {"w": p.copy()}, torch.tensor(p.copy(), requires_grad=True)
    opt = optim.SGD(lr=0.1, momentum=0.9, dampening=0.5)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9, dampening=0.5)
    for step in range(6):
        if step == 3:
            opt.hyper["momentum"] = 0.0
            topt.param_groups[0]["momentum"] = 0.0
        g = rng.normal(size=5)
        tp.grad = torch.tensor(g)
        topt.step()
        if full:  # the statements a standalone module runs
            opt.t += 1
            env = {**EXPR_FUNCTIONS, **opt.hyper, "t": float(opt.t), "p": ours["w"], "g": g,
                   "momentum_buffer": opt.state.setdefault("w", {}).get("momentum_buffer",
                                                                      np.zeros(5))}
            exec("\n".join(opt.update_lines(full=True)), env)
            ours["w"], opt.state["w"]["momentum_buffer"] = env["p"], env["momentum_buffer"]
        else:
            opt.step(ours, {"w": g})
        np.testing.assert_allclose(ours["w"], tp.detach().numpy(), rtol=1e-12, err_msg=step)
