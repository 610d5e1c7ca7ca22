"""The transport floor: an unchanged refresh done by bare scripts that only speak HTTP.

Each script is a whole command, run as a subprocess like the contenders: a
fresh interpreter reads every feed's URL, ETag and Last-Modified from a file
and makes the same conditional GETs, on 4 threads, with one HTTP client and
nothing else (no config, no database, no policy). The server answers 304 to
each. What it costs is what the HTTP client alone costs a refresh, start-up
included, so the results show how much of our refresh is the client and how
much is ours.

- urllib3: the client the aggregator fetches with (docs/decisions/0001);
- http.client: the standard library's, the cheapest in Python here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from measure import PYTHON, CountsResponses, Run, fresh, run_command

THREADS = 4

URLLIB3_SCRIPT = '''\
import sys
import threading

import urllib3

jobs = [line.split("\\t") for line in open(sys.argv[1], encoding="utf-8").read().splitlines()]
threads = int(sys.argv[2])
pool = urllib3.PoolManager(num_pools=256, maxsize=threads, retries=False, timeout=10.0)
lock, statuses = threading.Lock(), []
todo = iter(jobs)


def work():
    while True:
        with lock:
            job = next(todo, None)
        if job is None:
            return
        url, etag, modified = job
        response = pool.request("GET", url, headers={"If-None-Match": etag, "If-Modified-Since": modified})
        with lock:
            statuses.append(response.status)


workers = [threading.Thread(target=work) for _ in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print({status: statuses.count(status) for status in set(statuses)})
'''

HTTP_CLIENT_SCRIPT = '''\
import http.client
import sys
import threading
from urllib.parse import urlsplit

jobs = [line.split("\\t") for line in open(sys.argv[1], encoding="utf-8").read().splitlines()]
threads = int(sys.argv[2])
lock, statuses = threading.Lock(), []
todo = iter(jobs)


def work():
    connections = {}  # (host, port) -> a kept-alive connection of this thread
    while True:
        with lock:
            job = next(todo, None)
        if job is None:
            break
        url, etag, modified = job
        parts = urlsplit(url)
        key = (parts.hostname, parts.port)
        if key not in connections:
            connections[key] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10.0)
        conn = connections[key]
        conn.request("GET", parts.path, headers={"If-None-Match": etag, "If-Modified-Since": modified})
        response = conn.getresponse()
        response.read()
        with lock:
            statuses.append(response.status)
    for conn in connections.values():
        conn.close()


workers = [threading.Thread(target=work) for _ in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print({status: statuses.count(status) for status in set(statuses)})
'''

CLIENTS = {"urllib3": URLLIB3_SCRIPT, "http.client": HTTP_CLIENT_SCRIPT}


@dataclass
class Transport:
    """The bare refreshes of one client over every round, in order."""

    client: str
    runs: list[Run] = field(default_factory=list)


def measure_transport(folder: Path, validators: list[tuple[str, str, str]], server: CountsResponses,
                      runs: int, results: dict[str, Transport]) -> None:
    """`runs` bare refreshes per client, alternating the clients, appended to results."""
    folder = fresh(folder)
    jobs = folder / "validators.tsv"
    jobs.write_text("".join(f"{url}\t{etag}\t{modified}\n" for url, etag, modified in validators), "utf-8")
    scripts = {}
    for client, text in CLIENTS.items():
        scripts[client] = folder / f"refresh_{client.replace('.', '_')}.py"
        scripts[client].write_text(text, "utf-8")
    for n in range(1, runs + 1):
        for client, script in scripts.items():
            run = run_command([PYTHON, str(script), str(jobs), str(THREADS)], folder / f"{script.stem}-{n}.log", server)
            results.setdefault(client, Transport(client)).runs.append(run)
