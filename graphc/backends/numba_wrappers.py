"""The Python side of a generated module, as source text: `TrainState` (params and
optimizer slots packed for the fused train step), `init_state` and `train_step`, and the
input checks of a standalone module (which cannot import graphc: it checks inputs with
the same messages as graphc.inputs, written again in the module itself)."""

TRAIN_STATE = '''
class TrainState:
    """What train_step keeps between steps: `slots[param][slot]` arrays, the step count
    `t`, the hyper-parameters `hyper` (change them freely, e.g. hyper["lr"]: nothing is
    recompiled) and `clip_grad_norm` / `clip_grad_value` (None: off). Params and slots
    are packed into flat arrays that the compiled step updates in place: after `bind`,
    `params[name]` and `slots[name][slot]` are views of them."""

    def __init__(self, params=None, slots=None, **hyper):
        self.P = np.zeros(NP, F)  # params
        self.S = np.zeros((len(SLOTS), NP), F)  # optimizer slots
        self.G = np.zeros(NP, F)  # gradients
        self.views, self.slot_views, param_args, grads = {}, {}, [], []
        for name, shape, start in PARAMS:
            stop = start + int(np.prod(shape))
            self.views[name] = self.P[start:stop].reshape(shape)
            self.slot_views[name] = {s: self.S[k, start:stop].reshape(shape)
                                     for k, s in enumerate(SLOTS)}
            param_args.append(self.P[start:stop] if shape == () else self.views[name])
            if shape != ():
                grads.append(self.G[start:stop].reshape(shape))
        self.args = (*param_args, self.P, self.S, self.G, *grads)  # for the kernel
        self.slots = {} if slots is None else slots
        self.t = 0
        self.hyper = {**HYPER, **hyper}
        self.clip_grad_norm = None
        self.clip_grad_value = None
        if params is not None:
            self.bind(params)

    def bind(self, params):
        """Make params[name] and slots[name][slot] the packed arrays, copying in any
        array that was replaced since the last step."""
        for name, view in self.views.items():
            p = params[name]
            if p is not view:
                if np.shape(p) != view.shape:
                    raise ValueError(f"param {name!r} has shape {list(np.shape(p))}, "
                                     f"expected {list(view.shape)}")
                view[...] = p
                dict.__setitem__(params, name, view)  # rebind, even in a graphc.Model's ParamDict
            slots = self.slots.setdefault(name, {})
            for s, sview in self.slot_views[name].items():
                old = slots.get(s)
                if old is not sview:
                    sview[...] = SLOT_INIT.get(s, 0.0) if old is None else old
                    slots[s] = sview


def init_state(params, **hyper):
    """A TrainState for `params`; hyper-parameters default to HYPER."""
    return TrainState(params, **hyper)


def train_step(params, state, /, **inputs):
    """One forward, backward, clipping and update, in place; returns the loss before it."""
    for k in FIXED_ZERO:
        if state.hyper[k] != 0:
            raise ValueError(f"state.hyper[{k!r}] = {state.hyper[k]}: this module was "
                             f"compiled with {k} 0, so its update keeps no {k} buffer; "
                             f"compile again with a {k} (train.optimizer.{k} in the spec)")
    arrays = _inputs(TRAIN_STEP_INPUTS, inputs)
    state.t += 1
    off = math.inf
    norm = off if state.clip_grad_norm is None else float(state.clip_grad_norm)
    value = off if state.clip_grad_value is None else float(state.clip_grad_value)
    return float(train_step_arrays(params, state, arrays, tuple(
        float(state.hyper[k]) for k in HYPER), float(state.t), norm, value))
'''

INPUT_CHECKS = '''
def _inputs(wanted, given):
    """The arrays for a kernel, in order, checked against the spec: names, shapes, and
    dtypes (converted to the compiled ones)."""
    for name in given:
        if name not in INPUT_NAMES:
            raise TypeError(f"unknown input {name!r}; inputs: "
                            + ", ".join(map(repr, INPUT_NAMES)))
    arrays, dims = [], {}
    for name, dtype, shape in wanted:
        if name not in given:
            raise TypeError(f"missing input {name!r}")
        a = np.asarray(given[name])
        if dtype == "float":
            a = np.asarray(a, F, order="C")
        else:
            if a.dtype.kind == "f" and not np.all(np.mod(a, 1) == 0):
                raise ValueError(f"input {name!r} holds integer labels; got non-integers")
            a = np.asarray(a, dtype, order="C")
        if not a.flags.writeable:
            a = a.copy()
        want = "[" + ", ".join(map(str, shape)) + "]"
        if a.ndim != len(shape):
            raise ValueError(f"input {name!r}: expected shape {want} ({len(shape)} axes), "
                             f"got {list(a.shape)} ({a.ndim} {'axis' if a.ndim == 1 else 'axes'})")
        for axis, (d, n) in enumerate(zip(shape, a.shape)):
            if isinstance(d, int):
                if d != n:
                    raise ValueError(f"input {name!r}: expected shape {want}, got "
                                     f"{list(a.shape)}: axis {axis} is {n}, the model "
                                     f"wants {d}")
            elif dims.setdefault(d, (n, name))[0] != n:
                raise ValueError(f"input {name!r}: expected shape {want}, got "
                                 f"{list(a.shape)}: axis {axis} ({d}) is {n}, but {d} is "
                                 f"{dims[d][0]} in input {dims[d][1]!r}")
        arrays.append(a)
    return arrays


def _params(params, names):
    out = []
    for name, shape in names:
        p = params[name]
        if type(p) is not np.ndarray or p.dtype != F or not p.flags.c_contiguous:
            p = np.asarray(p, F, order="C")
        if p.shape != shape:
            raise ValueError(f"param {name!r} has shape {list(p.shape)}, expected "
                             f"{list(shape)}")
        out.append(p)
    return out


def init_params():
    """The initial params graphc wrote beside this module, by name."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), PARAMS_FILE)
    with np.load(path) as f:
        return {name: np.array(f[name], F, order="C") for name, _, _ in PARAMS}
'''
