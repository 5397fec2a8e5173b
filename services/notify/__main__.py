"""``python -m services.notify COMMAND``: the notify subcommands on their own.

The same commands as ``providerctl notify COMMAND``, without importing the
other services' command modules; handy for running notify in isolation.
"""

from __future__ import annotations

import argparse
import sys

from services.common.config import ConfigError
from services.notify.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.notify")
    register(parser)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"notify: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # services.cli.CommandError, without importing services.cli (and every service with it).
        if type(exc).__name__ == "CommandError":
            print(f"notify: {exc}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
