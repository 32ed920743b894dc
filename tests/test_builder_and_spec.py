"""The Python front end and JSON give the same Graph; specs round-trip through JSON."""

import json

import numpy as np
import pytest

import graphc
from graphc import F


def test_json_round_trip(examples):
    for path in sorted(examples.glob("*.json")):
        g = graphc.load(path)
        again = graphc.load(json.loads(json.dumps(g.to_json())))
        assert again == g, path.name
        assert graphc.load(g.to_json_text()) == g  # JSON text loads too


def test_builder_auto_ids_attrs_and_layers():
    b = graphc.Builder("mlp", seed=3)
    x = b.input("x", ["B", 4])
    y = b.input("y", ["B"], dtype="int64")
    h = b.node("dense", x, id="fc1", units=8, activation="relu")
    logits = F.dense(h, units=3)
    loss = F.cross_entropy(logits, y, label_smoothing=0.1)
    g = b.build(outputs=[logits], loss=loss)
    assert [n["id"] for n in g.nodes] == ["fc1", "dense_0", "cross_entropy_0"]
    assert g.seed == 3 and g.nodes[2]["attrs"] == {"label_smoothing": 0.1}
    m = graphc.compile(g, backend="numpy")
    assert set(m.params) == {"fc1.W", "fc1.b", "dense_0.W", "dense_0.b"}
    loss_value, _ = m.grad(x=np.ones((2, 4)), y=[0, 2])
    # the loss is cross-entropy with label smoothing 0.1 of the logits it computes
    z = m.forward(x=np.ones((2, 4)))["dense_0"].astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    target = np.full((2, 3), 0.1 / 3) + 0.9 * np.eye(3)[[0, 2]]
    assert loss_value == pytest.approx(-(target * logp).sum(-1).mean(), rel=1e-5)


def test_builder_errors_are_spec_errors():
    b = graphc.Builder("bad")
    x = b.input("x", [3])
    with pytest.raises(graphc.SpecError, match="already used"):
        b.input("x", [3])
    y = F.exp(x)
    with pytest.raises(graphc.SpecError, match="unknown op 'expp'"):
        b2 = graphc.Builder("bad2")
        F.expp(b2.input("z", [2]))
        b2.build(outputs=["expp_0"])
    other = graphc.Builder("other").input("o", [3])
    with pytest.raises(graphc.SpecError, match="another Builder"):
        y + other


def test_load_accepts_dicts_text_paths_and_graphs(examples):
    path = examples / "fork.json"
    g = graphc.load(path)
    assert graphc.load(str(path)) == g
    assert graphc.load(path.read_text()) == g
    assert graphc.load(json.loads(path.read_text())) == g
    assert graphc.load(g) is g
    with pytest.raises(graphc.SpecError, match="cannot load a spec from int"):
        graphc.load(42)


def test_seeded_initializers_are_reproducible_and_per_name():
    spec = {"graphc": 1, "name": "init", "seed": 5, "inputs": {"x": {"shape": [4]}},
            "params": {n: {"shape": [30, 20], "init": n} for n in
                       ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
                        "orthogonal", "normal", "uniform", "zeros", "ones")},
            "nodes": [{"id": "y", "op": "exp", "inputs": ["x"]}], "outputs": ["y"]}
    a = graphc.compile(spec, backend="numpy", dtype="float64").params
    b = graphc.compile(spec, backend="numpy", dtype="float64").params
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert np.std(a["he_normal"]) == pytest.approx(np.sqrt(2 / 30), rel=0.1)
    assert np.std(a["xavier_uniform"]) == pytest.approx(np.sqrt(2 / 50), rel=0.1)
    assert np.abs(a["he_uniform"]).max() <= np.sqrt(6 / 30)
    q = a["orthogonal"]
    np.testing.assert_allclose(q.T @ q, np.eye(20), atol=1e-10)
    assert a["zeros"].sum() == 0 and a["ones"].sum() == 600
    spec["seed"] = 6
    c = graphc.compile(spec, backend="numpy", dtype="float64").params
    assert not np.array_equal(a["normal"], c["normal"])
    spec["params"]["extra"] = {"shape": [2], "init": "normal"}
    d = graphc.compile(spec, backend="numpy", dtype="float64").params
    np.testing.assert_array_equal(c["normal"], d["normal"])  # adding a param changes no other


def test_save_and_load_params(tmp_path, examples):
    m = graphc.compile(examples / "mnist_mlp.json", backend="numpy")
    m.params["logits.b"][:] = 7
    m.save(tmp_path / "p.npz")
    m2 = graphc.compile(examples / "mnist_mlp.json", backend="numpy")
    m2.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(m2.params["logits.b"], 7)
    other = graphc.compile(examples / "neuron.json", backend="numpy")
    with pytest.raises(graphc.InputError, match="has no array for param 'w0'"):
        other.load(tmp_path / "p.npz")


def test_schema_is_valid_and_lists_every_public_op():
    import jsonschema

    from graphc.ops import public_ops
    from graphc.spec import schema

    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    assert set(s["$defs"]["node"]["properties"]["op"]["enum"]) == {o.name for o in public_ops()}


def test_specs_can_name_a_layers_params_and_internals():
    """An L2 penalty on a dense layer's weights: `fc.W` exists once `fc` is expanded."""
    s = {"graphc": 1, "name": "pen", "inputs": {"x": {"shape": ["B", 3]},
                                               "y": {"shape": ["B", 1]}},
         "nodes": [{"id": "pen", "op": "l2_penalty", "inputs": ["fc.W"], "attrs": {"scale": 0.1}},
                   {"id": "fc", "op": "dense", "inputs": ["x"], "attrs": {"units": 1}},
                   {"id": "fit", "op": "mse", "inputs": ["fc", "y"]},
                   {"id": "L", "op": "add", "inputs": ["fit", "pen"]}],
         "outputs": ["fc.matmul"], "loss": "L"}
    m = graphc.compile(s, backend="numpy", dtype="float64")
    x, y = np.ones((2, 3)), np.zeros((2, 1))
    _, g = m.grad(x=x, y=y)
    _, g0 = graphc.compile({**s, "nodes": [{**s["nodes"][0], "attrs": {"scale": 0.0}},
                                           *s["nodes"][1:]]}, backend="numpy",
                           dtype="float64").grad(x=x, y=y)
    np.testing.assert_allclose(g["fc.W"] - g0["fc.W"], 0.2 * m.params["fc.W"])
    s["nodes"][0]["inputs"] = ["fc.Q"]
    with pytest.raises(graphc.SpecError, match=r"nodes\[0\] \(id 'pen'\).inputs\[0\]: unknown"):
        graphc.load(s)


def test_forward_needs_no_labels_and_evaluate_names_values(examples):
    m = graphc.compile(examples / "mnist_mlp.json", backend="numpy")
    x = np.zeros((3, 784), dtype=np.float32)
    assert m.forward(x=x)["probs"].shape == (3, 10)
    vals = m.evaluate(["hidden", "loss"], x=x, y=[0, 1, 2])
    assert vals["hidden"].shape == (3, 256)
    np.testing.assert_allclose(vals["loss"], np.log(10), rtol=1e-6)  # zero input, zero bias
    with pytest.raises(graphc.InputError, match="no value named 'hiden'"):
        m.evaluate(["hiden"], x=x)
    with pytest.raises(graphc.InputError, match="missing input 'y'"):
        m.evaluate(x=x)
