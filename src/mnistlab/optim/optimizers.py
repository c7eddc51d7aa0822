"""Optimizers over a model's flat parameter buffers.

An optimizer is built over a ParameterSet, owns its state (velocities, moments, step count), and
alone changes parameter values: step() reads `params.grad` and updates `params.data`, each in a
few vectorized calls over the whole flat buffer.

step() consumes the gradient: RMSprop and Adam use the gradient buffer as their scratch space once
they have read it (every backward pass writes the gradients afresh, it never accumulates into
them). Working in the buffer the backward pass has just written, rather than in a separate one,
keeps the update's arrays in cache.

Conventions follow PyTorch (momentum buffers v = mu * v + g; Adam's bias correction), so results
match torch.optim step for step.

weight_decay is *decoupled* decay (p -= lr * wd * p, AdamW-style) and applies only to the weights
(the first params.n_decay entries). The L2 penalty coupled to the loss (the trainer's `l2`) is
given to step(): its gradient l2 * W joins the weights' gradients there.

One step, as the trainer runs it::

    sink = optimizer.gradient_sink(l2)   # None for every optimizer but fused SGD
    model.backward(grad_of_loss, sink)
    optimizer.step(sink, l2)

Plain SGD and SGD with momentum (fused=True, the default) hand the backward pass a GradientSink:
the Dense layers' weight-gradient GEMMs then write W <- (1 - lr * decay) * W - lr * dL/dW
themselves (momentum: v <- mu * v + dL/dW), so the weights' gradients are never written to a
buffer and read back, and step(sink, l2) updates only what remains (biases and BatchNorm's scale
and shift, and momentum's W -= lr * v). Same arithmetic as the unfused step, rounded differently
in the last place. GEMMs with alpha and beta need SciPy's BLAS: `uses_gradient_sink` tells the
trainer so (mnistlab.backend.blas.Blas.training). With fused=False the weights' gradients are
written to their .grad like every other optimizer's (for a gradient check, say).
benchmarks/sink.py times epochs with and without the sink.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import blas

from mnistlab.errors import UsageError
from mnistlab.nn.parameters import GradientSink, Parameter, ParameterSet

#: how often (in steps) slots are cleared of values near the subnormal range, and the margin.
FLUSH_EVERY = 32
FLUSH_BELOW = 1e8
#: Adam keeps its moments scaled by up to 1 / beta^FLUSH_EVERY only where that is below 1 / this
MIN_SCALE = 1e-3


def _check_positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value > 0):
        raise UsageError(f"{name} must be a positive number, got {name}={value!r}")
    return float(value)


def _check_unit(name: str, value: float) -> float:
    if not (isinstance(value, (int, float, np.floating)) and 0.0 <= value < 1.0):
        raise UsageError(f"{name} must be in [0, 1), got {name}={value!r}")
    return float(value)


def _axpy(dtype):
    """BLAS y += a * x for the buffer's dtype: one pass, no temporary array."""
    return blas.saxpy if np.dtype(dtype) == np.float32 else blas.daxpy


class Optimizer:
    """The base of every optimizer: the parameters, the learning rate, decoupled weight decay
    and the step count; a subclass implements ``_update(lr)`` (and declares its slot arrays).

    Parameters
    ----------
    params : ParameterSet, Parameter or iterable of Parameter
        What it updates (a list is gathered into a ParameterSet: one flat buffer).
    learning_rate : float
        The step size (> 0); a schedule may change ``learning_rate`` between steps.
    weight_decay : float
        Decoupled decay of the weights, ``W -= lr * weight_decay * W`` before the step.
    """

    name = "optimizer"

    def __init__(self, params, learning_rate: float, weight_decay: float = 0.0) -> None:
        if not isinstance(params, ParameterSet):
            params = ParameterSet(list(params) if not isinstance(params, Parameter) else [params])
        self.params = params
        self.learning_rate = _check_positive("learning_rate", learning_rate)
        if not (math.isfinite(weight_decay) and weight_decay >= 0):
            raise UsageError(f"weight_decay must be >= 0, got weight_decay={weight_decay!r}")
        self.weight_decay = float(weight_decay)
        self.iterations = 0
        self._axpy = _axpy(params.dtype)

    def zero_grad(self) -> None:
        """Set every gradient to zero (the backward pass overwrites them anyway)."""
        self.params.grad.fill(0)

    @property
    def uses_gradient_sink(self) -> bool:
        """Whether gradient_sink() gives a sink: the step then rides in the weights' gradient
        GEMMs, which need GEMM's alpha and beta (SciPy's BLAS)."""
        return False

    def gradient_sink(self, l2: float = 0.0) -> GradientSink | None:
        """Where this step's backward pass should write the weights' gradients, or None (the
        default: to their .grad, where step() reads them). Ask once per step, after setting the
        learning rate, and pass the answer to model.backward() and then to step(); the sink is
        valid until the next call (SGD hands out one object with new coefficients each time).
        l2: the coefficient of the L2 penalty coupled to the loss, as step() will be given it.
        """
        return None

    def step(self, sink: GradientSink | None = None, l2: float = 0.0) -> None:
        """Apply one update with the current learning rate and gradients.

        sink: the one that gradient_sink() gave for this step and the backward pass wrote to,
            or None.
        l2: the coefficient of the L2 penalty 0.5 * l2 * ||W||^2 coupled to the loss (the
            trainer's l2): its gradient l2 * W joins the weights' gradients before the update
            (with a sink, the same l2 given to gradient_sink(): the GEMMs took part of it).
        """
        self.iterations += 1
        lr = self.learning_rate
        if sink is None:
            n = self.params.n_decay
            if l2:
                self._axpy(self.params.data[:n], self.params.grad[:n], a=l2)
            if self.weight_decay:
                weights = self.params.data[:n]
                weights *= 1.0 - lr * self.weight_decay
            self._update(lr)
        else:
            self._update_after_sink(lr, sink, l2)
        if self.iterations % FLUSH_EVERY == 0:
            self._flush_tiny()

    def _update_after_sink(self, lr: float, sink: GradientSink, l2: float) -> None:
        raise UsageError(f"optimizer {self.name!r} does not take a gradient sink")

    def _flush_tiny(self) -> None:
        """Set slot values that have decayed below FLUSH_BELOW * tiny to zero.

        A slot whose gradient has become zero (a dead unit, a pixel that is blank in almost every
        image) decays geometrically into the subnormal range, where every arithmetic operation
        on it is tens of times slower (see mnistlab.backend.fpu, which covers the calling thread
        only: not the BLAS's worker threads, nor other platforms). Values this small change no
        update measurably.
        """
        threshold = np.finfo(self.params.dtype).tiny * FLUSH_BELOW
        for array in self._slots().values():
            np.copyto(array, 0, where=np.abs(array) < threshold)

    def _update(self, lr: float) -> None:
        raise NotImplementedError

    def config(self) -> dict:
        """The optimizer's name and settings, JSON-ready (a checkpoint records them)."""
        return {
            "name": self.name,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
        }

    def state_dict(self) -> dict[str, np.ndarray | int]:
        """The optimizer's state: its step count and slot arrays."""
        return {"iterations": self.iterations, **{k: v for k, v in self._slots().items()}}

    def load_state_dict(self, state: dict) -> None:
        """Put back what `state_dict` returned (UsageError for slots of another shape)."""
        self.iterations = int(state["iterations"])
        for key, array in self._slots().items():
            if state[key].shape != array.shape:
                raise UsageError(
                    f"optimizer state {key} has shape {state[key].shape}, expected {array.shape}"
                )
            array[...] = state[key]

    def _slots(self) -> dict[str, np.ndarray]:
        return {}


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum and Nesterov momentum::

        plain:     p -= lr * g
        momentum:  v = mu * v + g;  p -= lr * v
        nesterov:  v = mu * v + g;  p -= lr * (g + mu * v)

    Parameters
    ----------
    params, learning_rate, weight_decay
        As for `Optimizer`.
    momentum : float
        mu, in [0, 1); 0 is plain SGD.
    nesterov : bool
        Nesterov's momentum (needs momentum > 0).
    fused : bool
        Plain SGD and momentum apply the weights' part of the step inside their gradient
        GEMMs (a GradientSink, see the module's docstring); False writes the gradients to
        ``.grad`` like every other optimizer.
    """

    name = "sgd"

    def __init__(
        self,
        params,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        fused: bool = True,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay)
        self.momentum = _check_unit("momentum", momentum)
        if nesterov and self.momentum == 0:
            raise UsageError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self.fused = bool(fused)
        self.velocity = np.zeros_like(self.params.data) if self.momentum else None
        # the sink handed out every step (its alpha and beta set anew each time)
        buffer = self.velocity if self.velocity is not None else self.params.data
        self._sink = GradientSink(buffer, 1.0, 1.0)

    def _update(self, lr):
        data, grad = self.params.data, self.params.grad
        if self.velocity is None:
            self._axpy(grad, data, a=-lr)
            return
        v = self.velocity
        v *= self.momentum
        v += grad
        if self.nesterov:
            self._axpy(grad, data, a=-lr)
            self._axpy(v, data, a=-lr * self.momentum)
        else:
            self._axpy(v, data, a=-lr)

    @property
    def uses_gradient_sink(self):
        """True when fused and not Nesterov, and every weight's gradient comes from a GEMM."""
        # Nesterov's step reads the gradient itself, not only the velocity; and every weight's
        # gradient must come from a GEMM that can write to the sink
        params = self.params
        return self.fused and not self.nesterov and params.n_decay > 0 and params.weights_take_sink

    def gradient_sink(self, l2=0.0):
        """The sink with this step's coefficients: plain SGD ``alpha = -lr``,
        ``beta = 1 - lr * (weight_decay + l2)``; momentum ``alpha = 1``, ``beta = mu`` (the
        velocity's update). None when `uses_gradient_sink` is False."""
        if not self.uses_gradient_sink:
            return None
        lr, sink = self.learning_rate, self._sink
        if self.velocity is None:
            # W <- W - lr * (wd * W + l2 * W + g): the weights' whole update in their GEMMs
            sink.alpha, sink.beta = -lr, 1.0 - lr * (self.weight_decay + l2)
        else:
            sink.alpha, sink.beta = 1.0, self.momentum
        return sink

    def _update_after_sink(self, lr, sink, l2):
        n = self.params.n_decay
        data, grad = self.params.data, self.params.grad
        if self.velocity is None:  # the weights are done; the rest as in _update
            if n < data.size:
                self._axpy(grad[n:], data[n:], a=-lr)
            return
        # The GEMMs made v[:n] = mu * v[:n] + g; what _update does besides, in the same order:
        # the L2 term of the weights' gradient (with W before its decay), the rest's velocity,
        # the decay, the step.
        v = self.velocity
        if l2:
            self._axpy(data[:n], v[:n], a=l2)
        if n < data.size:
            rest = v[n:]
            rest *= self.momentum
            rest += grad[n:]
        if self.weight_decay:
            weights = data[:n]
            weights *= 1.0 - lr * self.weight_decay
        self._axpy(v, data, a=-lr)

    def config(self):
        """The base settings with momentum, nesterov and fused."""
        return {
            **super().config(),
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "fused": self.fused,
        }

    def _slots(self):
        return {"velocity": self.velocity} if self.velocity is not None else {}


class RMSprop(Optimizer):
    """RMSprop: ``s = rho * s + (1 - rho) * g^2;  p -= lr * g / (sqrt(s) + eps)``.

    Parameters
    ----------
    params, learning_rate, weight_decay
        As for `Optimizer`.
    rho : float
        The decay of the squared-gradient average, in [0, 1).
    eps : float
        Added to the root (> 0), as Keras and PyTorch add it.
    """

    name = "rmsprop"

    def __init__(
        self,
        params,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        eps: float = 1e-7,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay)
        self.rho = _check_unit("rho", rho)
        self.eps = _check_positive("eps", eps)
        self.square_avg = np.zeros_like(self.params.data)
        self._scratch = np.empty_like(self.params.data)

    def _update(self, lr):
        data, grad, s, scratch = self.params.data, self.params.grad, self.square_avg, self._scratch
        squared = np.multiply(grad, grad, out=scratch)
        s *= self.rho
        self._axpy(squared, s, a=1.0 - self.rho)
        denominator = np.sqrt(s, out=scratch)
        denominator += self.eps
        # g / (sqrt(s) + eps), in the gradient's buffer (see the module's docstring)
        direction = np.divide(grad, denominator, out=grad)
        self._axpy(direction, data, a=-lr)

    def config(self):
        """The base settings with rho and eps."""
        return {**super().config(), "rho": self.rho, "eps": self.eps}

    def _slots(self):
        return {"square_avg": self.square_avg}


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba), as torch.optim.Adam computes it::

        m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g^2
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    Without the correction the first steps are too small by 1/(1 - b1^t) for m, and the step
    direction is scaled wrongly while v warms up: an uncorrected Adam can take steps far from
    lr in size early on and diverge.

    The moments are kept scaled, so that a step needs no pass over them for the decay:
    ``m = m_scaled * b1^k`` and ``v = v_scaled * b2^k``, where ``k = iterations % FLUSH_EVERY``
    is the number of steps since the decay was last applied. A step adds
    ``(1 - b1) / b1^k * g`` to ``m_scaled`` (and likewise for v), which is the same m; every
    FLUSH_EVERY steps ``m_scaled *= b1^FLUSH_EVERY`` and k starts again from 0. Seven passes
    over the parameters a step instead of nine. Not bit-identical to applying the decay every
    step (rounding differs in the last place; the tests compare both with Adam as written, and
    with PyTorch). For betas so small that ``b^FLUSH_EVERY < MIN_SCALE`` (``1/b^k`` would grow
    too large; b = 0 is allowed) the decay is applied every step instead. `m` and `v` give the
    moments; ``state_dict()`` holds the scaled arrays (``m_scaled``, ``v_scaled``), so that a
    resumed run continues bit for bit.

    Parameters
    ----------
    params, learning_rate, weight_decay
        As for `Optimizer`.
    beta1, beta2 : float
        The decays of the first and second moments, in [0, 1).
    eps : float
        Added to the root of the second moment (> 0).
    """

    name = "adam"

    def __init__(
        self,
        params,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay)
        self.beta1 = _check_unit("beta1", beta1)
        self.beta2 = _check_unit("beta2", beta2)
        # steps between applications of the decay (1: every step, see the class's docstring)
        lazy = min(self.beta1, self.beta2) ** FLUSH_EVERY >= MIN_SCALE
        self.decay_period = FLUSH_EVERY if lazy else 1
        self.eps = _check_positive("eps", eps)
        self.m_scaled = np.zeros_like(self.params.data)
        self.v_scaled = np.zeros_like(self.params.data)

    @property
    def m(self) -> np.ndarray:
        """The first moment (a new array)."""
        return self.m_scaled * self.params.dtype.type(self.beta1 ** self._pending())

    @property
    def v(self) -> np.ndarray:
        """The second moment (a new array)."""
        return self.v_scaled * self.params.dtype.type(self.beta2 ** self._pending())

    def _pending(self) -> int:
        """Steps whose decay the scaled moments do not include yet."""
        return self.iterations % self.decay_period

    def _update(self, lr):
        t, period = self.iterations, self.decay_period
        b1, b2 = self.beta1, self.beta2
        data, grad, m, v = self.params.data, self.params.grad, self.m_scaled, self.v_scaled
        if period == 1:  # small betas: the decay applied now, nothing pending
            m *= b1
            v *= b2
            k = 0
        else:
            k = (t - 1) % period + 1  # steps of decay the scaled moments will lack after this one
        self._axpy(grad, m, a=(1.0 - b1) / b1**k)
        # From here on the gradient's buffer is scratch space (see the module's docstring).
        squared = np.multiply(grad, grad, out=grad)
        self._axpy(squared, v, a=(1.0 - b2) / b2**k)
        # p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps), with m = b1^k * m_scaled and
        # sqrt(v) = sqrt(b2^k) * sqrt(v_scaled): the constants fold into eps and the step size.
        sqrt_correction2 = math.sqrt(1.0 - b2**t)
        sqrt_decay2 = math.sqrt(b2**k)
        denominator = np.sqrt(v, out=grad)
        denominator += self.eps * sqrt_correction2 / sqrt_decay2
        direction = np.divide(m, denominator, out=grad)
        step = lr * b1**k * sqrt_correction2 / ((1.0 - b1**t) * sqrt_decay2)
        self._axpy(direction, data, a=-step)
        if k == period:  # apply the decay of the last `period` steps
            m *= b1**k
            v *= b2**k

    def config(self):
        """The base settings with beta1, beta2 and eps."""
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _slots(self):
        return {"m_scaled": self.m_scaled, "v_scaled": self.v_scaled}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p -= lr * wd * p`` before the
    Adam step, on the weights only. Default weight_decay 0.01, as torch.optim.AdamW; the other
    parameters as for `Adam`."""

    name = "adamw"

    def __init__(
        self,
        params,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(params, learning_rate, beta1, beta2, eps, weight_decay)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}


def get_optimizer(name: str, params, **kwargs) -> Optimizer:
    """An optimizer by name: sgd, momentum, nesterov, rmsprop, adam, adamw.

    "momentum" and "nesterov" are SGD with momentum 0.9 unless `kwargs` give it; `kwargs` go to
    the class's constructor. UsageError lists the valid names for an unknown one.
    """
    key = name.lower()
    if key == "momentum":
        kwargs.setdefault("momentum", 0.9)
        key = "sgd"
    elif key == "nesterov":
        kwargs.setdefault("momentum", 0.9)
        kwargs["nesterov"] = True
        key = "sgd"
    if key not in OPTIMIZERS:
        valid = ", ".join([*OPTIMIZERS, "momentum", "nesterov"])
        raise UsageError(f"unknown optimizer {name!r}; valid: {valid}")
    return OPTIMIZERS[key](params, **kwargs)


OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
