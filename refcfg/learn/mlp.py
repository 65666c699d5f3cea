"""A small multilayer perceptron in pure NumPy with manual backpropagation, and Adam.

The network maps (x, t, y) to an output vector::

    features = [x, t, sin(pi 2^k t), cos(pi 2^k t) for k < n_freqs, onehot(y, C + 1)]
    h_0 = features
    h_{l+1} = silu(h_l W_l + b_l)              l = 0 .. depth - 1      (hidden layers, width units)
    out = h_depth W_depth + b_depth

The label enters as a one-hot vector with ``C + 1`` slots; slot ``C`` is the null label (the notes'
empty token, arXiv 2506.02070 section 5.2, used by classifier-free guidance and its training
loss, eq. 66). A network built with ``n_classes=0`` takes no label (unconditional fields, noisy
classifiers).

Every layer has its forward and backward pass side by side (``_linear_forward``/``_linear_backward``,
``_silu_forward``/``_silu_backward``). All parameters live in one flat vector ``MLP.theta``; the weight
and bias arrays are views into it, and gradients are written into views of one flat gradient vector,
so that Adam (Kingma and Ba 2015, Algorithm 1) is a handful of whole-vector operations.

float64 by default (``dtype="float32"`` is accepted for speed). Initialisation is seeded:
``W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (PyTorch's ``nn.Linear`` default law).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from .._validation import NULL

__all__ = ["MLPConfig", "MLP", "Adam", "time_features", "load_mlp"]

FORMAT_VERSION = 1


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


@dataclass(frozen=True)
class MLPConfig:
    """Architecture of an :class:`MLP`.

    d_in: dimension of x. d_out: output dimension. n_classes: number of classes C of the label input
    (0: no label input; otherwise a one-hot of C + 1 slots, the last one the null label).
    width: units per hidden layer. depth: number of hidden layers (>= 1). n_freqs: number of
    sinusoidal time frequencies pi 2^k, k < n_freqs (t itself is always a feature).
    dtype: "float64" (default) or "float32". seed: initialisation seed.
    """

    d_in: int
    d_out: int
    n_classes: int = 0
    width: int = 128
    depth: int = 3
    n_freqs: int = 6
    dtype: str = "float64"
    seed: int = 0

    def __post_init__(self):
        _check_int(self.d_in, "d_in", 1)
        _check_int(self.d_out, "d_out", 1)
        _check_int(self.n_classes, "n_classes", 0)
        _check_int(self.width, "width", 1)
        _check_int(self.depth, "depth", 1)
        _check_int(self.n_freqs, "n_freqs", 0)
        _check_int(self.seed, "seed", 0)
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")

    @property
    def n_time_features(self) -> int:
        return 1 + 2 * self.n_freqs

    @property
    def n_label_slots(self) -> int:
        return self.n_classes + 1 if self.n_classes > 0 else 0

    @property
    def n_features(self) -> int:
        return self.d_in + self.n_time_features + self.n_label_slots

    @property
    def layer_sizes(self) -> list[tuple[int, int]]:
        sizes = [self.n_features] + [self.width] * self.depth + [self.d_out]
        return list(zip(sizes[:-1], sizes[1:]))

    @property
    def n_params(self) -> int:
        """Number of parameters (weights and biases of every layer)."""
        return sum(i * o + o for i, o in self.layer_sizes)


def time_features(t: np.ndarray, n_freqs: int, dtype=np.float64) -> np.ndarray:
    """Sinusoidal time features of t (N,): columns [t, sin(pi 2^k t), cos(pi 2^k t)], k < n_freqs."""
    t = np.asarray(t, dtype=np.float64).reshape(-1, 1)
    freqs = np.pi * 2.0 ** np.arange(n_freqs)
    angles = t * freqs  # (N, n_freqs)
    return np.concatenate([t, np.sin(angles), np.cos(angles)], axis=1).astype(dtype, copy=False)


# ------------------------------------------------------------------------------------------------
# Layers: forward and backward side by side.  Shapes: h (N, n_in), W (n_in, n_out), b (n_out,).
# ------------------------------------------------------------------------------------------------


def _linear_forward(h, W, b):
    # a = h W + b                                                     (N, n_out)
    a = h @ W
    a += b
    return a


def _linear_backward(h, W, g, gW, gb, need_input_grad: bool):
    # dL/dW = h^T g (n_in, n_out), dL/db = sum_n g (n_out,), dL/dh = g W^T (N, n_in)
    np.matmul(h.T, g, out=gW)
    np.sum(g, axis=0, out=gb)
    return g @ W.T if need_input_grad else None


def _silu_forward(a):
    # silu(a) = a sigmoid(a); also returns sigmoid(a) for the backward pass.
    # sigmoid(a) = 1 / (1 + exp(-a)): exp overflows to inf for a < -709 and 1/inf = 0 is exact;
    # this is ~5x faster than scipy.special.expit here.
    s = np.negative(a)
    with np.errstate(over="ignore"):
        np.exp(s, out=s)
    s += 1.0
    np.reciprocal(s, out=s)
    return a * s, s


def _silu_backward(a, h, s, g):
    # d silu / da = s + a s (1 - s) = s + h - h s  with h = silu(a) = a s
    tmp = h * s
    np.subtract(h, tmp, out=tmp)
    tmp += s
    tmp *= g
    return tmp


class MLP:
    """Multilayer perceptron with SiLU activations on (x, t, y) features (module docstring).

    ``forward(x, t, y)`` returns the output; ``forward(..., cache=True)`` also returns the cache
    that ``backward(cache, grad_out)`` consumes to fill ``self.grad`` (flat, aligned with
    ``self.theta``) and, on request, return dL/dx.
    """

    def __init__(self, config: MLPConfig, meta: dict | None = None, *, _init: bool = True):
        if not isinstance(config, MLPConfig):
            raise TypeError(f"config must be an MLPConfig, got {type(config).__name__}")
        self.config = config
        self.meta = dict(meta or {})
        self.dtype = np.dtype(config.dtype)
        sizes = config.layer_sizes
        n_params = config.n_params
        from .._limits import require_memory

        # theta and grad here; Adam's two moments and a copy during training: 5 vectors
        require_memory(
            5.0 * n_params * self.dtype.itemsize,
            f"an MLP of width {config.width} and depth {config.depth} ({n_params} parameters)",
            "width or depth",
        )
        self.theta = np.zeros(n_params, dtype=self.dtype)
        self.grad = np.zeros(n_params, dtype=self.dtype)
        self.weights, self.biases, self.grad_weights, self.grad_biases = [], [], [], []
        self.param_names = []
        offset = 0
        for layer, (n_in, n_out) in enumerate(sizes):
            for kind, shape in (("W", (n_in, n_out)), ("b", (n_out,))):
                size = int(np.prod(shape))
                view = self.theta[offset : offset + size].reshape(shape)
                gview = self.grad[offset : offset + size].reshape(shape)
                (self.weights if kind == "W" else self.biases).append(view)
                (self.grad_weights if kind == "W" else self.grad_biases).append(gview)
                self.param_names.append(f"{kind}{layer}")
                offset += size
        if _init:
            rng = np.random.default_rng(config.seed)
            for W, b in zip(self.weights, self.biases):
                bound = 1.0 / math.sqrt(W.shape[0])
                W[...] = rng.uniform(-bound, bound, size=W.shape)
                b[...] = rng.uniform(-bound, bound, size=b.shape)

    # -- parameters -------------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        return self.theta.size

    def params(self) -> dict[str, np.ndarray]:
        """Named views into ``theta``: W0, b0, W1, b1, ..."""
        arrays = [a for pair in zip(self.weights, self.biases) for a in pair]
        return dict(zip(self.param_names, arrays))

    def grads(self) -> dict[str, np.ndarray]:
        """Named views into ``grad`` (filled by ``backward``)."""
        arrays = [a for pair in zip(self.grad_weights, self.grad_biases) for a in pair]
        return dict(zip(self.param_names, arrays))

    def copy(self) -> MLP:
        other = MLP(self.config, self.meta, _init=False)
        other.theta[...] = self.theta
        return other

    # -- features ---------------------------------------------------------------------------------
    def features(self, x, t, y=None) -> np.ndarray:
        """The input matrix (N, n_features) from x (N, d_in), t float or (N,), labels y."""
        cfg = self.config
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != cfg.d_in:
            raise ValueError(f"x has shape {x.shape} but the model requires (N, {cfg.d_in})")
        n = x.shape[0]
        t = np.asarray(t, dtype=np.float64)
        if t.ndim == 0:
            t = np.full(n, float(t))
        elif t.shape != (n,):
            raise ValueError(f"t has shape {t.shape} but x implies a float or shape ({n},)")
        parts = [x, time_features(t, cfg.n_freqs, self.dtype)]
        if cfg.n_classes > 0:
            parts.append(self.label_onehot(y, n))
        elif y is not None:
            raise ValueError(
                f"y must be None for a model without label input (n_classes=0), got {y!r}"
            )
        return np.concatenate(parts, axis=1)

    def label_onehot(self, y, n: int) -> np.ndarray:
        """One-hot (n, C + 1) of labels in {0..C-1}; None / NULL (-1) map to the null slot C."""
        C = self.config.n_classes
        if y is None:
            idx = np.full(n, C, dtype=np.int64)
        else:
            arr = np.asarray(y)
            if arr.dtype.kind not in "iu":
                raise TypeError(
                    f"y must be an int label, None or an int array, got dtype {arr.dtype}"
                )
            if not (arr.ndim == 0 or arr.shape == (n,)):
                raise ValueError(f"y has shape {arr.shape} but x implies an int or shape ({n},)")
            idx = np.broadcast_to(arr.astype(np.int64), (n,)).copy()
            bad = (idx != NULL) & ((idx < 0) | (idx >= C))
            if np.any(bad):
                raise ValueError(f"y must be in 0..{C - 1} or NULL (-1), got {int(idx[bad][0])}")
            idx[idx == NULL] = C
        onehot = np.zeros((n, C + 1), dtype=self.dtype)
        onehot[np.arange(n), idx] = 1.0
        return onehot

    # -- forward / backward -----------------------------------------------------------------------
    def forward(self, x, t, y=None, *, cache: bool = False):
        """Network output (N, d_out); with ``cache=True`` returns (output, cache) for backward."""
        h = self.features(x, t, y)
        return self.forward_features(h, cache=cache)

    __call__ = forward

    def forward_features(self, h, *, cache: bool = False):
        """Forward pass from a feature matrix h (N, n_features)."""
        hs, acts, sigs = [h], [], []
        L = len(self.weights) - 1
        for layer in range(L):
            a = _linear_forward(h, self.weights[layer], self.biases[layer])
            h, s = _silu_forward(a)
            if cache:
                hs.append(h)
                acts.append(a)
                sigs.append(s)
        out = _linear_forward(h, self.weights[L], self.biases[L])
        if cache:
            return out, (hs, acts, sigs)
        return out

    def backward(self, cache, grad_out, *, input_grad: bool = False):
        """Backpropagate dL/d(output) (N, d_out): fills ``self.grad`` (dL/dtheta) and returns
        dL/dx (N, d_in) when ``input_grad`` is True (else None)."""
        hs, acts, sigs = cache
        g = np.asarray(grad_out, dtype=self.dtype)
        L = len(self.weights) - 1
        for layer in range(L, -1, -1):
            need = layer > 0 or input_grad
            gh = _linear_backward(
                hs[layer],
                self.weights[layer],
                g,
                self.grad_weights[layer],
                self.grad_biases[layer],
                need,
            )
            if layer > 0:
                g = _silu_backward(acts[layer - 1], hs[layer], sigs[layer - 1], gh)
        if input_grad:
            return gh[:, : self.config.d_in]
        return None

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path) -> str:
        """Save parameters, configuration and metadata to an ``.npz`` file; returns the path."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        np.savez(
            path,
            theta=self.theta,
            config=np.array(json.dumps(asdict(self.config))),
            meta=np.array(json.dumps(self.meta)),
            format_version=np.array(FORMAT_VERSION),
        )
        return path

    @classmethod
    def load(cls, path) -> MLP:
        """Load a model written by :meth:`save`.

        The file is read with :class:`refcfg._npzfile.NpzFile`: the configuration is parsed and the
        size of the network it declares checked against the memory budget before ``theta`` is
        read; ``theta`` must be a real floating-point vector of exactly that size, finite. Every
        error is a ValueError naming the file and the field."""
        from .._npzfile import NpzFile

        where = os.fspath(path)
        label = f"model file {where!r}"
        try:
            archive = NpzFile(where, "model file")
        except ValueError as exc:
            if "does not exist" in str(exc) or "is a directory" in str(exc):
                raise
            reason = str(exc).removeprefix(label).strip()
            raise ValueError(
                f"{label} is not a refcfg model file (an .npz archive written by "
                f"MLP.save, `refcfg train` or `refcfg demo`): it {reason}"
            ) from None
        with archive as data:
            missing = {"theta", "config", "meta", "format_version"} - set(data.names)
            if missing:
                raise ValueError(
                    f"{label} is not a refcfg MLP file (an .npz archive written by "
                    f"MLP.save, `refcfg train` or `refcfg demo`): missing "
                    f"{sorted(missing)}"
                )
            version = data.array("format_version", kinds="iu", ndim=0)
            if int(version) != FORMAT_VERSION:
                raise ValueError(
                    f"{label}: field 'format_version' is {int(version)}, this "
                    f"refcfg reads {FORMAT_VERSION}"
                )
            cfg = _json_field(data, "config", label)
            meta = _json_field(data, "meta", label)
            if not isinstance(cfg, dict):
                raise ValueError(
                    f"{label}: field 'config' must be a JSON object, got {type(cfg).__name__}"
                )
            try:
                config = MLPConfig(**cfg)
                model = cls(config, meta, _init=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{label}: field 'config': {exc}") from None
            shape, dtype = data.header("theta")
            if dtype.hasobject or dtype.kind != "f":
                data.array("theta", kinds="f")  # raises, naming the dtype
            if shape != model.theta.shape:
                raise ValueError(
                    f"{label}: field 'theta' has shape {shape}, the configuration "
                    f"requires {model.theta.shape}"
                )
            theta = data.array("theta", kinds="f", ndim=1, finite=True)
            model.theta[...] = theta
        return model

    def __repr__(self) -> str:
        c = self.config
        return (
            f"MLP(d_in={c.d_in}, d_out={c.d_out}, n_classes={c.n_classes}, width={c.width}, "
            f"depth={c.depth}, n_params={self.n_params}, dtype={c.dtype})"
        )


def _json_field(data, name: str, label: str):
    """The JSON document stored as a string scalar in field ``name`` (at most 1 MiB of text)."""
    text = data.array(name, kinds="U", ndim=0)
    if text.dtype.itemsize > 4 << 20:
        raise ValueError(
            f"{label}: field {name!r} is a string of {text.dtype.itemsize // 4} "
            f"characters; a model's {name} is at most 1 Mi characters"
        )
    try:
        value = json.loads(str(text))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{label}: field {name!r} is not valid JSON ({exc})") from None
    if name == "meta" and not isinstance(value, dict):
        raise ValueError(f"{label}: field 'meta' must be a JSON object, got {type(value).__name__}")
    return value


def load_mlp(path) -> MLP:
    """Load an :class:`MLP` saved with :meth:`MLP.save`."""
    return MLP.load(path)


@dataclass
class Adam:
    """Adam (Kingma and Ba 2015, arXiv 1412.6980, Algorithm 1) on a flat parameter vector.

    step(): k <- k + 1; m <- beta1 m + (1 - beta1) g; v <- beta2 v + (1 - beta2) g^2;
    m_hat = m / (1 - beta1^k); v_hat = v / (1 - beta2^k); theta <- theta - lr m_hat / (sqrt(v_hat) + eps).
    ``lr`` may be changed between steps (learning-rate schedules).
    """

    theta: np.ndarray
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    k: int = 0
    m: np.ndarray = field(default=None, repr=False)
    v: np.ndarray = field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.theta, np.ndarray) or self.theta.ndim != 1:
            raise TypeError(
                f"theta must be a 1-d numpy array (e.g. MLP.theta), got {type(self.theta).__name__}"
            )
        for name in ("lr", "eps"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)!r}")
        if self.m is None:
            self.m = np.zeros_like(self.theta)
        if self.v is None:
            self.v = np.zeros_like(self.theta)
        self._tmp = np.empty_like(self.theta)

    def step(self, grad: np.ndarray) -> None:
        """One update of ``theta`` in place from the gradient ``grad`` (same shape)."""
        self.k += 1
        b1, b2 = self.beta1, self.beta2
        m, v, tmp = self.m, self.v, self._tmp
        m *= b1
        m += (1.0 - b1) * grad
        np.multiply(grad, grad, out=tmp)
        v *= b2
        tmp *= 1.0 - b2
        v += tmp
        # theta -= lr * m_hat / (sqrt(v_hat) + eps), with the bias corrections of Algorithm 1
        c1 = 1.0 - b1**self.k
        c2 = 1.0 - b2**self.k
        np.sqrt(v, out=tmp)
        tmp /= math.sqrt(c2)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / c1
        self.theta -= tmp
