"""Run the demo service: ``python -m perfgate.demo [--host H] [--port P] [slowdown flags]``.

Flags (each overrides the matching environment variable):

``--host``                 address to bind (default ``127.0.0.1``; only this address is bound)
``--port``                 TCP port (default ``8080``)
``--slowdown-pct``         ``PERFGATE_DEMO_SLOWDOWN_PCT``: percent added to the service time
``--slow-endpoint``        ``PERFGATE_DEMO_SLOW_ENDPOINT``: e.g. ``"POST /orders"``; empty = all
``--slow-tail-fraction``   ``PERFGATE_DEMO_SLOW_TAIL_FRACTION``: 0 = every request, else the
                           fraction of requests slowed (ten times as much)
``--slow-kind``            ``PERFGATE_DEMO_SLOW_KIND``: ``wait`` (default, the added time is awaited)
                           or ``cpu`` (it is computed, holding the CPU)

Uvicorn serves in a single process with the access log off and log level ``warning``.
SIGINT and SIGTERM shut the server down gracefully (exit status 0). Invalid settings
print one line on stderr and exit with status 2; failing to bind (e.g. address in use)
exits with status 3 after uvicorn's error line.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from collections.abc import Sequence
from typing import NoReturn

PROG = "python -m perfgate.demo"
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are a single line on stderr (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Run the perfgate demo service.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8080, help="TCP port (default: 8080)")
    parser.add_argument(
        "--slowdown-pct",
        type=_number,
        default=None,
        metavar="PCT",
        help="scale the simulated service time by (1 + PCT/100) [env PERFGATE_DEMO_SLOWDOWN_PCT]",
    )
    parser.add_argument(
        "--slow-endpoint",
        default=None,
        metavar="'METHOD /route'",
        help="only slow this endpoint, e.g. 'POST /orders' or 'GET /items/{id}'; "
        "empty = all [env PERFGATE_DEMO_SLOW_ENDPOINT]",
    )
    parser.add_argument(
        "--slow-tail-fraction",
        type=_number,
        default=None,
        metavar="F",
        help="0 = slow every request; otherwise slow only this random fraction of requests, "
        "by (1 + 10*PCT/100) [env PERFGATE_DEMO_SLOW_TAIL_FRACTION]",
    )
    parser.add_argument("--slow-kind", default=None, choices=("wait", "cpu"),
                        help="wait: the added time is awaited; cpu: it is computed [env PERFGATE_DEMO_SLOW_KIND]")
    parser.add_argument("--leak-kb", type=_number, default=None, metavar="KB",
                        help="each request keeps this many KiB for good, a leak GET /metrics shows "
                        "[env PERFGATE_DEMO_LEAK_KB]")
    return parser


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    from perfgate.demo.app import DemoSettings, create_app, explain

    overrides = {}
    for flag, field in (
        ("--slowdown-pct", "slowdown_pct"),
        ("--slow-endpoint", "slow_endpoint"),
        ("--slow-tail-fraction", "slow_tail_fraction"),
        ("--slow-kind", "slow_kind"),
        ("--leak-kb", "leak_kb"),
    ):
        value = getattr(args, field)
        if value is None:
            continue
        try:
            DemoSettings.model_validate({field: value})
        except ValueError as exc:
            parser.error(f"argument {flag}: {explain(exc, with_field=False)}")
        overrides[field] = value
    try:
        settings = DemoSettings.from_env(**overrides)
    except ValueError as exc:
        parser.error(str(exc))

    import uvicorn

    # Uvicorn shuts down gracefully on SIGTERM and then re-raises the signal with the
    # previous handler; with this handler the process exits 0 instead of dying by signal.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        workers=1,
        access_log=False,
        log_level="warning",
    )
    host_for_url = f"[{args.host}]" if ":" in args.host else args.host
    ready_line = (
        f"perfgate demo service listening on http://{host_for_url}:{args.port} "
        f"({settings.describe()})"
    )

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(ready_line, file=sys.stderr, flush=True)

    server = _Server(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        return 3  # uvicorn has already logged why (e.g. address in use)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # interrupted before the server took over the signals
        sys.exit(130)
