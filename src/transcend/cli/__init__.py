"""The ``transcend`` command group. Each pipeline stage has its own module of commands."""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from ..errors import TranscendError
from .data import data
from .export import export_command
from .info import info_command
from .policy import policy_command
from .reproduce import reproduce_command
from .tournament import tournament_command
from .train import train_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="transcend")
def cli() -> None:
    """Train a chess GPT on game transcripts and play it as a UCI engine.

    The pipeline: `data prepare` (PGN to tokens), `train`, `export` (ONNX),
    then `transcend-uci --model MODEL.onnx` in any chess GUI.
    """


cli.add_command(data)
cli.add_command(train_command)
cli.add_command(export_command)
cli.add_command(info_command)
cli.add_command(policy_command)
cli.add_command(tournament_command)
cli.add_command(reproduce_command)


def main() -> None:
    """Run the CLI; bad input ends in a one-line error (set TRANSCEND_DEBUG=1 for the traceback).

    Bad input is a ``TranscendError`` (every stage's errors derive from it) or an ``OSError`` (a
    file that cannot be read or written); anything else is a bug and shows its traceback.
    """
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("transcend: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("transcend: interrupted", err=True)
        sys.exit(130)
    except (TranscendError, OSError) as exc:
        if os.environ.get("TRANSCEND_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        click.echo(f"transcend: error: {message}", err=True)
        sys.exit(1)
