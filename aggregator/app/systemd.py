"""Telling systemd how the daemon is doing (sd_notify), for `Type=notify` units.

systemd starts the services that depend on this one only once it says
READY=1 (the database is open and the server listens), shows STATUS= in
`systemctl status`, and with `WatchdogSec=` restarts the daemon when the
WATCHDOG=1 pings stop (a hung process, not only a dead one). The protocol
is one datagram to the socket named by NOTIFY_SOCKET; outside systemd that
variable is unset and every call does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(*fields: str) -> bool:
    """Send `KEY=value` fields to systemd; False when not under a notify unit or the socket is gone."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or not fields:
        return False
    if address.startswith("@"):  # an abstract socket: its name starts with a NUL byte
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode())
    except OSError:
        return False  # systemd went away or the unit is not Type=notify: nothing to tell
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec=, as sd_watchdog_enabled advises), or None.

    WATCHDOG_PID, when set, names the process systemd watches; a child that
    inherited the environment must not ping on the daemon's behalf.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000 / 2


def ready(status: str = "") -> bool:
    return notify("READY=1", f"STATUS={status}") if status else notify("READY=1")


def status(text: str) -> bool:
    return notify(f"STATUS={text}")


def stopping() -> bool:
    return notify("STOPPING=1")


def watchdog() -> bool:
    return notify("WATCHDOG=1")
