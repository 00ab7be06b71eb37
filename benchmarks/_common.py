"""What the benchmark scripts share: the machine's CPU model, the CPU share other processes use
while a benchmark runs (and waiting for them to leave), and best-of-rounds timing.

Timings are only meaningful on an otherwise idle machine. Each script makes :data:`SHARE` wait
(``--wait-idle SECONDS``, :func:`add_wait_idle_option`) before every timing round and ends by
printing :meth:`CPUShare.report`.

Imported as ``_common`` by ``python benchmarks/X.py`` (the script's folder is first on sys.path)
and as ``benchmarks._common`` by ``python -m benchmarks.X``. Standard library only.
"""

from __future__ import annotations

import os
import platform
import time

__all__ = ["CPUShare", "SHARE", "Timing", "best_time", "add_wait_idle_option", "cpu_model", "header"]


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(*versions: str) -> str:
    """The first line of a benchmark's output: ``# CPU model, Python, VERSIONS..., date (UTC)``."""
    parts = [cpu_model(), f"{platform.python_implementation()} {platform.python_version()}", *versions]
    return "# " + ", ".join([*parts, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())])


class CPUShare:
    """CPU time used by other processes while the benchmark runs (from /proc/stat, Linux; 0 elsewhere).

    :meth:`wait_idle` waits (up to ``wait_seconds``) for the other processes to leave the CPUs and
    :meth:`others` reports the share of all CPUs they used since :meth:`restart`. The CPU time of
    this process and of its finished child processes is not counted as the others'.
    """

    def __init__(self, wait_seconds: float = 0.0):
        self.restart(wait_seconds)

    def restart(self, wait_seconds: float = 0.0) -> None:
        """Count from now on; each :meth:`wait_idle` waits up to ``wait_seconds``."""
        self.wait_seconds = wait_seconds
        self.start = self._sample()

    @staticmethod
    def _sample():
        """(all CPUs busy seconds, all CPUs total seconds, this process and its children's CPU seconds) or None."""
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        t = os.times()
        return (
            (sum(ticks) - ticks[3] - ticks[4]) / hz,
            sum(ticks) / hz,
            t.user + t.system + t.children_user + t.children_system,
        )

    @staticmethod
    def _between(a, b) -> float:
        """Share of all CPUs that other processes used between two samples."""
        if a is None or b is None or b[1] <= a[1]:
            return 0.0
        return max(0.0, ((b[0] - a[0]) - (b[2] - a[2])) / (b[1] - a[1]))

    def others(self) -> float:
        """Share of all CPUs that other processes used since :meth:`restart`."""
        return self._between(self.start, self._sample())

    def wait_idle(self, threshold: float = 0.1, window: float = 0.5) -> None:
        """Wait (up to wait_seconds) until other processes use < threshold of the CPUs for `window` s."""
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline:
            a = self._sample()
            time.sleep(window)
            if self._between(a, self._sample()) < threshold:
                return

    def report(self) -> str:
        return f"other processes used {self.others():.0%} of the CPUs during this run (timings need ~0 %)"


#: the benchmark's CPU share; a script's main calls ``SHARE.restart(args.wait_idle)``
SHARE = CPUShare()


def add_wait_idle_option(parser) -> None:
    """The ``--wait-idle SECONDS`` option (default 0) of every benchmark script."""
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each timing round, wait up to SECONDS for other processes to leave the CPUs (default 0)",
    )


class Timing:
    """Time per call of fn, the best over rounds; each round calls fn long enough to time reliably.

    The first call (compilation, first touch) is not timed. A script may interleave the rounds of
    several timings (solver.py), so that a slow spell of the host, which a VM cannot see, does not
    spoil all the rounds of one entry. Every round first waits for an idle machine (:data:`SHARE`).
    """

    def __init__(self, fn, work: float = 1.0, min_seconds: float = 0.3):
        self.fn, self.work, self.best = fn, work, float("inf")
        SHARE.wait_idle()
        fn()  # warm-up
        t0 = time.perf_counter()
        fn()
        self.inner = max(1, int(min_seconds / max(time.perf_counter() - t0, 1e-6)))

    def round(self) -> None:
        SHARE.wait_idle()
        t0 = time.perf_counter()
        for _ in range(self.inner):
            self.fn()
        self.best = min(self.best, (time.perf_counter() - t0) / self.inner)

    @property
    def rate(self) -> float:
        """work / best time per call (e.g. voxel updates per second)."""
        return self.work / self.best


def best_time(fn, repeats: int = 5, min_seconds: float = 0.3) -> float:
    """Best per-call seconds of fn over ``repeats`` rounds of at least ``min_seconds`` each (after a warm-up)."""
    t = Timing(fn, min_seconds=min_seconds)
    for _ in range(repeats):
        t.round()
    return t.best
