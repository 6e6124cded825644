"""``dagster dev`` whose daemon is ``bio_assets.app.daemon`` (a shorter backfill tick).

``dagster dev`` starts the webserver and ``python -m dagster._daemon run ...`` through
``dagster._cli.dev.open_ipc_subprocess``; this entry point swaps the daemon's module and leaves
every argument, the shutdown pipes and the code server as ``dagster dev`` sets them up.

Run as ``python -m bio_assets.app.dev_server --host ... --port ... --workspace ...``.
"""

from __future__ import annotations

import sys

DAGSTER_DAEMON_MODULE = ["-m", "dagster._daemon"]
OUR_DAEMON_MODULE = ["-m", "bio_assets.app.daemon"]


def with_our_daemon(command: list[str]) -> list[str]:
    """``command`` with Dagster's daemon module replaced by ours; any other command unchanged."""
    if command[1:3] == DAGSTER_DAEMON_MODULE:
        return [command[0], *OUR_DAEMON_MODULE, *command[3:]]
    return command


def main(argv: list[str]) -> int:
    import dagster._cli.dev as dev
    from dagster._cli import main as dagster_main

    open_subprocess = dev.open_ipc_subprocess
    dev.open_ipc_subprocess = lambda command, **kwargs: open_subprocess(with_our_daemon(command), **kwargs)
    sys.argv = ["dagster", "dev", *argv]
    return dagster_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
