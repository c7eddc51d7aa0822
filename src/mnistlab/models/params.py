"""What an estimator's parameters may be: one declarative `ParamSpec` per argument.

Every estimator lists a ParamSpec for each argument of its __init__ in `param_specs`; fit checks
its values against them, the run configuration (mnistlab.experiments.config) checks its keys
against the same specs, and `mnistlab train` takes its options' types, metavars and help from
them. A spec maps onto a scikit-learn `_parameter_constraints` entry: "int" and "float" with
bounds are Interval(Integral | Real, low, high, closed=...), `choices` and `also` are
StrOptions, none=True adds None, "bool" is "boolean", and `check` a callable constraint.

Errors are one line that names the parameter and quotes the value, in one of four styles:
"keyword" names it as the estimator does and quotes `C=-1` (as the layers and optimizers do);
"python" names it so too, quoting the bare value (`learning_rate ... got -1`); "cli" names the
option (--lr) and "key" the configuration key (lr, as a study file writes it). A value outside
a list of choices is quoted bare in every style: the list already says whose choices they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

from mnistlab.errors import UsageError

#: what a value must be, by the spec's kind
KINDS = ("int", "float", "bool", "name", "choice", "sizes", "split", "any")
#: which ends of [low, high] are allowed
CLOSED = ("both", "left", "right", "neither")
STYLES = ("keyword", "python", "cli", "key")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its name, what its values may be, and how the command line shows it.

    Parameters
    ----------
    name : str
        The estimator's argument (``learning_rate``).
    kind : str
        "int", "float" (finite), "bool", "name" (a string), "choice" (one of ``choices``),
        "sizes" (a list of positive integers), "split" (an integer count >= 0 or a float
        fraction in (0, 1)),
        "any" (only ``check``).
    low, high, closed
        Bounds of int and float values; ``closed`` says which ends are allowed.
    choices : tuple
        The values a "choice" (or a "name") may take.
    none : bool
        None is also valid (meaning "the default" or "off").
    also : tuple of str
        Strings accepted besides the kind (smoothing's "auto").
    check : callable or None
        Raises UsageError for a bad value (a registry lookup).
    key : str or None
        The run-configuration key and ``mnistlab train`` option ("" for the name itself, None
        for an argument that only Python callers set).
    requirement : str
        What the value must be, where the kind and bounds say it badly.
    help, metavar : str
        The option's help text (``{choices}`` lists the choices) and metavar.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    choices: tuple = ()
    none: bool = False
    also: tuple[str, ...] = ()
    check: Callable[[object], object] | None = None
    key: str | None = ""
    requirement: str = ""
    help: str = ""
    metavar: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"ParamSpec kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.closed not in CLOSED:
            raise ValueError(f"ParamSpec closed must be one of {', '.join(CLOSED)}")
        if self.key == "":
            object.__setattr__(self, "key", self.name)

    # ------------------------------------------------------------------ naming

    def display(self, style: str) -> str:
        """How errors name it: learning_rate (keyword, python), --lr (cli) or lr (key)."""
        if style in ("keyword", "python") or self.key is None:
            return self.name
        if style == "key":
            return self.key
        return option_flag(self.key)

    def help_text(self) -> str:
        return self.help.replace("{choices}", or_list(self.choices))

    # ------------------------------------------------------------------ checking

    def validate(self, value, style: str = "python") -> None:
        """Raise UsageError naming the parameter (in `style`) unless `value` is valid."""
        if value is None and self.none:
            return
        if isinstance(value, str) and value in self.also:
            return
        if not self._has_kind(value):
            self._fail(value, style, self.requirement or self._kind_text())
        if self.choices and value not in self.choices:
            self._fail(value, style, self.requirement or f"one of {', '.join(self.choices)}", True)
        if not self._within_bounds(value):
            self._fail(value, style, self.requirement or self._kind_text())
        if self.check is not None:
            self.check(value)

    def _has_kind(self, value) -> bool:
        if self.kind == "int":
            return isinstance(value, Integral) and not isinstance(value, bool)
        if self.kind == "float":
            return is_number(value) and math.isfinite(value)
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "name":
            return isinstance(value, str)
        if self.kind == "sizes":
            return isinstance(value, (list, tuple)) and all(
                isinstance(size, Integral) and not isinstance(size, bool) and size > 0
                for size in value
            )
        if self.kind == "split":
            # a count is an integer (0: none held out); a float is a fraction (1.0 is neither:
            # not "one image")
            if isinstance(value, Integral) and not isinstance(value, bool):
                return value >= 0
            return is_number(value) and 0 < value < 1
        return True  # "choice" and "any": the choices and the check decide

    def _within_bounds(self, value) -> bool:
        if self.kind not in ("int", "float"):
            return True
        low_ok = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        )
        high_ok = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )
        return low_ok and high_ok

    def _kind_text(self) -> str:
        """What the kind and bounds require, in words: "a positive integer", "in [0, 1)"."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "name":
            return "a name"
        low_closed = self.closed in ("both", "left")
        if self.kind == "int" and self.high is None and self.low in (0, 1) and low_closed:
            return "a positive integer" if self.low == 1 else "a non-negative integer"
        if self.kind == "float" and self.high is None and self.low == 0:
            return "a non-negative number" if low_closed else "a positive number"
        noun = "an integer" if self.kind == "int" else "a number"
        if self.low is not None and self.high is not None:
            return f"in {self.interval()}"
        if self.low is not None:
            return f"{noun} {'>=' if low_closed else '>'} {_bound(self.low)}"
        if self.high is not None:
            return f"{noun} {'<=' if self.closed in ('both', 'right') else '<'} {_bound(self.high)}"
        return noun

    def interval(self) -> str:
        """[low, high) and the like."""
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        low = "-inf" if self.low is None else _bound(self.low)
        high = "inf" if self.high is None else _bound(self.high)
        return f"{left}{low}, {high}{right}"

    def _fail(self, value, style: str, requirement: str, among_choices: bool = False):
        got = f"{self.name}={value!r}" if style == "keyword" and not among_choices else repr(value)
        raise UsageError(f"{self.display(style)} must be {requirement}, got {got}")


def _bound(value: float) -> str:
    """A bound as a person writes it: 1000000 and 0.5, not 1e+06."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def option_flag(key: str) -> str:
    """The `mnistlab train` option of a configuration key: batch_size -> --batch-size."""
    return "--" + key.replace("_", "-")


def or_list(names) -> str:
    """'a or b' for two names, 'a, b, c' for more."""
    names = [str(name) for name in names]
    return " or ".join(names) if len(names) == 2 else ", ".join(names)


def is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def validate_params(specs, values: dict, style: str = "python") -> None:
    """Check each value in `values` (python name -> value) that has a spec in `specs`."""
    for spec in specs:
        if spec.name in values:
            spec.validate(values[spec.name], style)


# ---------------------------------------------------------------------- shared by estimators

#: the seed, under scikit-learn's name on the estimators; the run configuration and `mnistlab
#: train` call it seed
RANDOM_STATE = ParamSpec("random_state", "int", low=0, key="seed")
DTYPE = ParamSpec(
    "dtype", "choice", choices=("float32", "float64"), requirement="float32 or float64"
)
LEARNING_RATE = ParamSpec(
    "learning_rate", "float", low=0, closed="neither", key="lr", metavar="LR", help="learning rate"
)
#: more epochs than anyone trains for is a typo (1e20 would be a run that never ends)
MAX_EPOCHS = 1_000_000
EPOCHS = ParamSpec("epochs", "int", low=1, high=MAX_EPOCHS, metavar="N")
BATCH_SIZE = ParamSpec("batch_size", "int", low=1, metavar="N")
L2 = ParamSpec("l2", "float", low=0, metavar="ALPHA", help="L2 penalty coupled to the loss")
VALIDATION = ParamSpec(
    "validation",
    "split",
    none=True,
    requirement="a count (10000), a fraction (0.1) or 0 (none)",
    metavar="N|FRACTION",
    help="hold out the last N training images (or a fraction); 0 holds out none",
)
