"""Start the real `aggregator run` many times fast: import once, fork a fresh daemon per request.

The crash test kills the daemon 20+ times; paying ~2 s of imports per start
would dominate the suite. This helper imports everything once, then for each
`start` line forks a child that runs the CLI entry point exactly as
`python -m aggregator -c CONFIG run` would. It stays single-threaded, so
forking is safe, and it is the children's parent, so it reaps them.

Protocol on stdin/stdout, one line each:
    start<TAB>config<TAB>stdout-file<TAB>stderr-file  ->  <pid>
    wait<TAB>pid                                       ->  <raw wait status>
"""

from __future__ import annotations

import os
import signal
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import aggregator.app.cli  # noqa: E402
import aggregator.app.daemon  # noqa: E402,F401
import aggregator.pipeline  # noqa: E402,F401
import aggregator.publish.render  # noqa: E402,F401
import aggregator.app.server  # noqa: E402,F401
import apscheduler.executors.pool  # noqa: E402,F401
import apscheduler.schedulers.background  # noqa: E402,F401
import apscheduler.triggers.interval  # noqa: E402,F401


def run_child(config: str, out: str, err: str) -> None:
    for fd, path in ((1, out), (2, err)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 0
    try:
        aggregator.app.cli.cli.main(["-c", config, "run"], prog_name="aggregator", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def main() -> None:
    for line in sys.stdin:
        command, *args = line.rstrip("\n").split("\t")
        if command == "start":
            pid = os.fork()
            if pid == 0:
                run_child(*args)
            print(pid, flush=True)
        elif command == "wait":
            _, status = os.waitpid(int(args[0]), 0)
            print(status, flush=True)


if __name__ == "__main__":
    main()
