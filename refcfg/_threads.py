"""Threads: the BLAS thread count of a loop of repeated steps, chosen by measurement (the training
loops and the levels of the exact-vs-learned comparison, ``refcfg.learn.compare``).

The NumPy MLP's steps are small matrix products (a batch of 512 times 64 x 64 weights in training,
a few thousand points per evaluation in the comparison): on an idle machine the default BLAS
threads are a little faster than one thread, on a busy one (other work on the same cores) they can
be several times slower, because BLAS threads spin and wait for cores.
Neither setting is right everywhere, so :class:`BlasThreads` measures. The loop's first steps run
alternately with one thread and with the default count (interleaved, ``rounds`` each; the first
round is a warm-up and not counted). One thread is kept unless the default count's MEAN time per
step is at least ``margin`` (5 %) smaller: threads must earn their place, since a wrong choice of
one thread costs at most the ~15 % they gain on an idle machine and a wrong choice of threads under
load several times that; and the mean, not the best time, because under load BLAS threads have
fast steps when the cores happen to be free and slow ones when they are not, and the mean is what
the loop pays. A trial ends early once every counted step of one candidate is more than 1.5x
slower than every counted step of the other, with two counted steps each (3x with one each). The trial is repeated every
``recheck_seconds`` of wall time (the load of a shared machine changes), or less often when a
trial cost more than ``max_overhead`` (2 %) of that interval. The steps timed are the loop's real
steps, so the choice costs no extra work. Only the BLAS thread count changes between steps: a
step's arithmetic is the same up to the rounding of the BLAS products
(tests/learn/test_learn_threads.py checks 1 vs 2 threads).
"""

from __future__ import annotations

import numbers
import time

__all__ = ["BlasThreads", "check_blas_threads"]


def check_blas_threads(value):
    """``None`` (choose by measurement) or a positive int; ValueError naming the argument."""
    if value is None:
        return None
    if isinstance(value, (bool,)) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(
            f"blas_threads must be None (choose by measurement) or a positive int, got {value!r}"
        )
    return int(value)


class BlasThreads:
    """Context manager that sets the BLAS thread count around each step of a loop.

    blas_threads: None to choose between 1 and the default count by timing the loop's own steps,
    or a fixed positive int. Use::

        with BlasThreads(None) as bt:
            for step in ...:
                with bt.step():
                    ...one step...
        bt.record()   # dict: chosen threads, default, mean seconds per candidate, re-checks

    On exit the thread counts in force on entry are restored. Without a BLAS library that
    threadpoolctl can control, it does nothing (``threads`` is None).
    """

    def __init__(
        self,
        blas_threads=None,
        *,
        rounds: int = 5,
        recheck_seconds: float = 10.0,
        max_overhead: float = 0.02,
        margin: float = 0.05,
        clock=time.perf_counter,
    ):
        self.requested = check_blas_threads(blas_threads)
        self.rounds = max(2, int(rounds))
        self.recheck_seconds = float(recheck_seconds)
        self.max_overhead = float(max_overhead)
        self.margin = float(margin)
        self.interval = self.recheck_seconds  # seconds between trials (grows with their cost)
        self._clock = clock
        self._ctl = None
        self._restore = None
        self.default = None
        self.threads = None  # the count in force between trials
        self.trials = {}  # candidate -> mean seconds per step in the latest trial
        self.checks = 0  # trials run
        self._plan = []  # (candidate, counted) still to run in the current trial
        self._times = {}
        self._last_check = None
        self._current = None

    # -- context ---------------------------------------------------------------------------------
    def __enter__(self):
        from threadpoolctl import ThreadpoolController

        ctl = ThreadpoolController().select(user_api="blas")
        if not ctl.lib_controllers:
            return self
        self._ctl = ctl
        self.default = max(int(lib.num_threads) for lib in ctl.lib_controllers)
        if self.requested is not None:
            self.threads = self.requested
            self._set(self.requested)
        elif self.default > 1:
            self._start_trial()
        else:
            self.threads = self.default
        return self

    def __exit__(self, *exc):
        if self._restore is not None:
            self._restore.restore_original_limits()
            self._restore = None
        return False

    # -- steps -----------------------------------------------------------------------------------
    def _set(self, n):
        if self._ctl is None or n == self._current:
            return
        limiter = self._ctl.limit(limits=int(n))
        if self._restore is None:
            self._restore = limiter  # remembers the counts in force on entry
        self._current = n

    def _start_trial(self):
        one, many = 1, self.default
        # interleaved A B B A A B ...: a drifting load affects both candidates alike
        order = []
        for r in range(self.rounds):
            order += [(n, r > 0) for n in ((one, many) if r % 2 == 0 else (many, one))]
        self._plan = order
        self._times = {}
        self._all = []  # every trial step's (candidate, seconds), warm-up included
        self.checks += 1

    def step(self):
        """Context manager around one step: applies the thread count, times the step when a trial
        is running, and ends the trial (keeping the faster count) after its last step."""
        return _Step(self)

    def _before(self):
        if self._plan:
            self._set(self._plan[0][0])
        elif self.threads is not None:
            self._set(self.threads)
        return self._clock()

    def _after(self, t0):
        now = self._clock()
        if self._plan:
            n, counted = self._plan.pop(0)
            self._all.append((n, now - t0))
            if counted:
                self._times.setdefault(n, []).append(now - t0)
            if not self._plan or self._decided():
                self._plan = []
                self.trials = {k: sum(v) / len(v) for k, v in self._times.items()}
                m1, md = (
                    self.trials.get(1, float("inf")),
                    self.trials.get(self.default, float("inf")),
                )
                self.threads = self.default if md < (1.0 - self.margin) * m1 else 1
                # what the trial cost beyond running every one of its steps at the chosen count
                extra = sum(dt for _, dt in self._all) - len(self._all) * self.trials[self.threads]
                self.interval = max(self.recheck_seconds, extra / self.max_overhead)
                self._last_check = now
                self._set(self.threads)
        elif (
            self.requested is None
            and self._last_check is not None
            and now - self._last_check > self.interval
        ):
            self._start_trial()

    def _decided(self) -> bool:
        # a clear difference ends the trial early: every counted step of one candidate more than
        # 1.5x slower than every counted step of the other with >= 2 each, 3x with one each
        ts = list(self._times.values())
        if len(ts) != 2 or len(ts[0]) != len(ts[1]):
            return False
        a, b = ts
        f = 3.0 if len(a) == 1 else 1.5
        return min(a) > f * max(b) or min(b) > f * max(a)

    def record(self) -> dict:
        """What was chosen: threads (the count in force at the end; None without a controllable
        BLAS), requested, default, trials (mean seconds per step of each candidate in the latest
        trial), checks (trials run) and interval (seconds between trials at the end)."""
        return dict(
            threads=self.threads if self.threads is not None else self._current,
            requested=self.requested,
            default=self.default,
            trials={int(k): float(v) for k, v in self.trials.items()},
            checks=self.checks,
            interval=float(self.interval),
        )


class _Step:
    __slots__ = ("bt", "t0")

    def __init__(self, bt):
        self.bt = bt

    def __enter__(self):
        self.t0 = self.bt._before()
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.bt._after(self.t0)
        return False
