"""`wtflow runs`, `wtflow show`, `wtflow logs`, `wtflow db upgrade`: reading the record."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the history commands; each sets `handler(args, config) -> int` as its default."""
