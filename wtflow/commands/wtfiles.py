"""The workflows a command works on: found in the wtfile(s) of -f, and their trees built."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wtflow import discover
from wtflow.discover import Registered
from wtflow.errors import WtfileError, WtflowError
from wtflow.model import Workflow

_PACKAGE = Path(__file__).resolve().parents[1]


def found(args: argparse.Namespace, *, keep_going: bool = False) -> discover.Discovery:
    """The wtfile (or folder of wtfiles) that -f names, loaded; with -v, says which files of a
    folder it passed over."""
    result = discover.find(Path(args.file), keep_going=keep_going)
    for skipped in result.skipped if args.verbose else ():
        print(f"wtflow: skipped {skipped}: not named like {discover.WTFILE_GLOB}", file=sys.stderr)
    return result


def build(reg: Registered, params: Mapping[str, Any] | None = None) -> Workflow:
    """Call the user's function; its mistakes are usage errors showing its own traceback."""
    try:
        return reg.build(params)
    except WtflowError:
        raise  # already names the workflow and its source
    except KeyboardInterrupt:  # Ctrl-C while it builds is an interruption, not its error
        raise
    except BaseException as e:  # sys.exit() in it would end wtflow without a word
        raise WtfileError(
            f"workflow {reg.name!r} ({reg.source}) raised while building its tree:\n{_user_traceback(e)}"
        ) from None


def _user_traceback(exc: BaseException) -> str:
    """The traceback without wtflow's own frames (they come first: cli, then discover)."""
    import traceback  # only for a broken workflow function (see discover._user_traceback)

    package = str(_PACKAGE)
    tb = exc.__traceback__
    while tb is not None and str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(package):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
