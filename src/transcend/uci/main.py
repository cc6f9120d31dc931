"""``transcend-uci``: the model as a UCI engine that GUIs, tournament runners and bots can rely on.

The entry point: the command line, then the answer to ``uci`` (``protocol.handshake``), sent before
numpy, python-chess, onnxruntime and the engine itself (``engine``) are even imported; the model then
loads in the background. The process never imports torch.
"""

from __future__ import annotations

import argparse
import os
import sys

from .options import add_flags, settings_from_args
from .protocol import Output, handshake, read_line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, as the project's errors are; --help shows usage
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="transcend-uci",
        description="The transcend model as a UCI chess engine: it speaks UCI on stdin and stdout. Every "
                    "flag sets the UCI option of the same meaning (a GUI can still change it with setoption). "
                    "With no arguments it plays with the model shipped in the package.",
    )
    add_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    settings = settings_from_args(build_parser().parse_args(argv))

    def closed() -> None:  # stdout is gone: leave without a word (and without a BrokenPipe message)
        os._exit(0)

    output = Output(sys.stdout.buffer, closed)
    try:
        output.set_log(settings.log_file)
    except OSError as exc:
        print(f"transcend-uci: error: --log-file: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    stdin = sys.stdin.buffer
    try:
        first = read_line(stdin)
        quick = first is not None and first.strip() == b"uci"
        if quick:  # the usual first command: answered before the engine is even imported
            output.log_input("uci")
            for line in handshake(settings):
                output.send(line)
        from .engine import UciEngine

        engine = UciEngine(settings, output)
        if quick:
            engine.start_loading()
        engine.run(stdin, first=None if quick else first)
    except KeyboardInterrupt:
        pass
    output.close()
    os._exit(0)  # a model still loading or running on a daemon thread must not delay or crash the exit


if __name__ == "__main__":
    main()
