"""Optimizers against torch.optim step for step, their update lines, from_spec, clipping."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from graphc import optim
from graphc.errors import SpecError
from graphc.ops.registry import EXPR_FUNCTIONS

torch = pytest.importorskip("torch")

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


@pytest.mark.parametrize("name,kwargs", [CASES[2], CASES[8], CASES[12], CASES[16]],
                         ids=lambda c: str(c))
def test_float32_matches_torch(name, kwargs):
    for _step, _opt, ours, _topt, theirs in _run_both(name, kwargs, dtype=np.float32):
        for k, tp in theirs.items():
            assert ours[k].dtype == np.float32
            np.testing.assert_allclose(ours[k], tp.detach().numpy(), rtol=2e-5, atol=2e-6)


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
    ({"name": "sgd", "lr": -1}, ["train.optimizer", "lr must be >= 0"]),
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
