#!/usr/bin/env python
"""Django's command-line entry point for Intercom Relay."""

import os
import sys
from pathlib import Path

# Written by `make run` (run_relay): the settings it chose, so that every manage.py command in
# another shell works with nothing pasted. The environment wins; production has no such file.
RUN_SETTINGS = Path(__file__).resolve().parent / "var" / "relay.env"
# Read together or not at all: the sandbox's URL with a real token (or the reverse) would be wrong.
INTERCOM_PAIR = ("INTERCOM_API_BASE", "INTERCOM_ACCESS_TOKEN")


def run_settings(path=RUN_SETTINGS, environ=os.environ):
    """The settings `make run` saved that the environment does not set, as a dict."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    saved = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    if any(environ.get(name) for name in INTERCOM_PAIR):
        saved = {name: value for name, value in saved.items() if name not in INTERCOM_PAIR}
    return {name: value for name, value in saved.items() if not environ.get(name)}


def main():
    # run_relay (make run) chooses these settings itself: it must never read its last choice back.
    chooses = sys.argv[1:2] == ["run_relay"]
    if os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings") == "config.settings" and not chooses:
        os.environ.update(run_settings())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
