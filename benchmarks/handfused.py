"""A peer for bench_cpu.py: an MLP's train step written by hand as one @njit function
(forward, backward and SGD, no Python between the layers, no allocation), started from
graphc's initial params. It is what graphc's generated step has to beat.
"""

from __future__ import annotations

import numpy as np
from numba import njit

RELU, TANH = 0, 1


@njit(cache=True, nogil=True, fastmath=False)
def _mm(a, b, out, ta, tb):
    """out = op(a) @ op(b): loops while the product is small (a BLAS call costs about
    1 µs of set-up), else np.dot on SciPy's BLAS."""
    n = a.shape[1] if ta else a.shape[0]
    k = a.shape[0] if ta else a.shape[1]
    m = b.shape[0] if tb else b.shape[1]
    if n * k * m > 32768:  # one branch per layout keeps each np.dot call's types exact
        if ta:
            np.dot(a.T, b, out)
        elif tb:
            np.dot(a, b.T, out)
        else:
            np.dot(a, b, out)
        return
    for i in range(n):
        for j in range(m):
            out[i, j] = 0.0
    for i in range(n):
        for p in range(k):
            x = a[p, i] if ta else a[i, p]
            for j in range(m):
                out[i, j] += x * (b[j, p] if tb else b[p, j])


@njit(cache=True, nogil=True)
def step(ws, bs, acts, grads, gws, x, y, act, bce, lr):
    """One SGD step of an MLP, in place; returns the loss before the update.
    ws/bs: the layers' weights [in, out] and biases; acts[i]: layer i's output (acts[0]
    unused), grads[i]: the gradient of layer i's pre-activation, gws[i] of its weights;
    `act` the hidden layers' activation (RELU or TANH); bce: sigmoid + binary
    cross-entropy, else softmax + cross-entropy."""
    L = len(ws)
    B = x.shape[0]
    for layer in range(L):
        src = x if layer == 0 else acts[layer]
        dst = acts[layer + 1]
        _mm(src, ws[layer], dst, False, False)
        b = bs[layer]
        last = layer == L - 1
        for i in range(B):
            for j in range(dst.shape[1]):
                z = dst[i, j] + b[j]
                if not last:
                    z = max(z, 0.0) if act == RELU else np.tanh(z)
                dst[i, j] = z
    out, dz = acts[L], grads[L - 1]
    loss = 0.0
    for i in range(B):
        if bce:
            p = 1.0 / (1.0 + np.exp(-out[i, 0]))
            t = y[i, 0]
            loss -= t * max(np.log(p), -100.0) + (1 - t) * max(np.log(1 - p), -100.0)
            dz[i, 0] = (p - t) / B
        else:
            mx = out[i, 0]
            for j in range(out.shape[1]):
                mx = max(mx, out[i, j])
            s = 0.0
            for j in range(out.shape[1]):
                s += np.exp(out[i, j] - mx)
            k = int(y[i, 0])
            loss -= out[i, k] - mx - np.log(s)
            for j in range(out.shape[1]):
                dz[i, j] = np.exp(out[i, j] - mx) / s / B
            dz[i, k] -= 1.0 / B
    for layer in range(L - 1, -1, -1):
        dz = grads[layer]
        src = x if layer == 0 else acts[layer]
        w, b = ws[layer], bs[layer]
        if layer > 0:  # the gradient of the layer below, with the old weights
            below = grads[layer - 1]
            _mm(dz, w, below, False, True)
            for i in range(B):
                for j in range(below.shape[1]):
                    a = src[i, j]
                    if act == RELU:
                        below[i, j] = below[i, j] if a > 0 else 0.0
                    else:
                        below[i, j] *= 1 - a * a
        for j in range(b.shape[0]):
            s = 0.0
            for i in range(B):
                s += dz[i, j]
            b[j] -= lr * s
        gw = gws[layer]
        _mm(src, dz, gw, True, False)
        for p in range(w.shape[0]):
            for j in range(w.shape[1]):
                w[p, j] -= lr * gw[p, j]
    return loss / B


class HandFused:
    """The hand-written step with its buffers allocated once."""

    def __init__(self, spec: dict, params: dict, batch: int):
        dense = [n for n in spec["nodes"] if n["op"] == "dense"]
        self.ws = tuple(np.ascontiguousarray(params[f"{n['id']}.W"]) for n in dense)
        self.bs = tuple(np.ascontiguousarray(params[f"{n['id']}.b"]) for n in dense)
        self.acts = tuple([np.empty((batch, 1), np.float32)]
                          + [np.empty((batch, w.shape[1]), np.float32) for w in self.ws])
        self.grads = tuple(np.empty((batch, w.shape[1]), np.float32) for w in self.ws)
        self.gws = tuple(np.empty_like(w) for w in self.ws)
        self.act = TANH if dense[0]["attrs"]["activation"] == "tanh" else RELU
        self.bce = spec["nodes"][-1]["op"] == "binary_cross_entropy"

    @staticmethod
    def labels(y: np.ndarray) -> np.ndarray:
        """Targets as the step takes them: float32 [B, 1] (class ids for CE)."""
        return np.ascontiguousarray(y.reshape(len(y), -1), dtype=np.float32)

    def __call__(self, x: np.ndarray, y2: np.ndarray, lr: float = 0.01) -> float:
        return step(self.ws, self.bs, self.acts, self.grads, self.gws, x, y2, self.act, self.bce,
                    lr)
