"""Signals that stop perfgate: SIGINT, SIGTERM and SIGHUP all become :class:`~perfgate.errors.Interrupted`.

Ctrl-C sends SIGINT; a CI system cancelling a job sends SIGINT or SIGTERM (GitHub Actions: SIGINT,
SIGTERM about 7.5 s later, then kills the process tree); a closed terminal sends SIGHUP. Each of them
unwinds perfgate the same way, so every ``finally`` stops the service, Locust and setup commands by
their process group and removes the base worktree. Only the first signal raises: a second one during
that clean-up is noted and ignored, so it cannot cut the clean-up short. After a signal, processes get
a short grace (:func:`perfgate.measure.service.stop_grace_s`), so the whole clean-up ends well within the CI's window.
"""

from __future__ import annotations

import signal
from types import FrameType

from perfgate.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_received: signal.Signals | None = None


def install() -> None:
    """Turn the stop signals into :class:`Interrupted` in this (the main) thread."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_signal)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    global _received
    if _received is not None:
        return  # already stopping: let the clean-up finish
    _received = signal.Signals(signum)
    # Raised instead of KeyboardInterrupt so that Click cannot turn it into another exit code.
    raise Interrupted("interrupted; nothing was stored", signum=_received)


def received() -> signal.Signals | None:
    """The first stop signal this process received, if any."""
    return _received


def ignore_from_now_on() -> None:
    """perfgate is exiting: a late signal must neither cut the exit short nor change its code.

    (At exit Python puts its handlers back to the defaults, which end the process by the signal.)
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
