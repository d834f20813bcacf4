"""What signal spans cost a production deployment: the demo under gunicorn, spans over OTLP.

Usage (from a fresh clone, one command; the first run makes ``.venv-bench``)::

    python3 benchmarks/production.py [--rounds 10] [--seconds 6] [--clients 16]

What runs
---------
* The demo site (``demo_project/``) under gunicorn, 1 worker x 4 threads (gthread),
  with production settings (``benchmarks/production_settings.py``): DEBUG off, no
  toolbar, MD5 password hasher, SQLite in WAL mode. One server per phase kind below,
  all started at once, each on its own copy of one seeded database.
* OpenTelemetry as the docs set it up (``setup_otlp_from_environment()``, which the
  demo calls): request spans from ``opentelemetry-instrumentation-django``, a
  ``BatchSpanProcessor`` and the real OTLP/HTTP exporter, sending to a local receiver
  this script runs (``benchmarks/otlp_counter.py``, another process) that decodes and
  counts every span.
* A load client: 16 threads with keep-alive connections, each request drawn at
  random: 40% home page, 40% user list, 20% sign-ups (a POST of the sign-up form,
  with the CSRF cookie its thread got at the start of the phase). Bounded: a fixed
  time per phase, after a short ramp that is not measured (and a warm-up of every
  server before the first round).

Phases, one server each, loaded in turn in every round (the order rotates from round
to round), so that each "on" phase is compared with an "off" phase a few seconds
away, through the same drift of a shared machine:

* ``off``: ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=signaltrace``: request spans only;
* ``defaults``: signal spans with signaltrace's default settings;
* ``all``: ``OTEL_ALL_DISPATCHES`` on: every dispatch gets spans (``pre_init`` and
  ``post_init`` stay ignored, as ``IGNORE_SIGNALS`` says).

The users signed up in a phase are deleted after it (the user list shows every user:
it would otherwise grow round after round), so every phase serves the same data.

Figures: requests/s and p50/p99 latency on/off ratios, per round against the ``off``
phase of the same round, medians over rounds; the gunicorn worker's CPU time per
request (``/proc/<pid>/stat``, Linux), whose on/off ratio depends less on what else
the machine runs than throughput does; span counts per request. The span
accounting is checked: the receiver must get one request span per request answered.
Targets (issue 18): requests/s on/off >= 0.97 with the defaults, >= 0.93 with every
signal traced.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import venv
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo_project"
VENV = ROOT / ".venv-bench"
REQUIREMENTS = (
    "gunicorn",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-instrumentation-django",
    "opentelemetry-proto",
)
IMPORTS = "import django, gunicorn, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, " + (
    "opentelemetry.instrumentation.django, opentelemetry.proto"
)
SETTINGS = "benchmarks.production_settings"
MODES = {
    "off": {"disabled": "signaltrace", "signaltrace": {}},
    "defaults": {"disabled": "", "signaltrace": {}},
    "all": {"disabled": "", "signaltrace": {"OTEL_ALL_DISPATCHES": True}},
}
MIX = (("home", 0.4), ("users", 0.4), ("signup", 0.2))
TARGETS = {"defaults": 0.97, "all": 0.93}


# ------------------------------------------------------------------ environment


def has_requirements(python: Path | str) -> bool:
    result = subprocess.run([str(python), "-c", IMPORTS], capture_output=True, check=False)
    return result.returncode == 0


def ensure_environment() -> None:
    """Run in an interpreter that has gunicorn and the OpenTelemetry packages: this one,
    ``.venv-newest`` if gunicorn is there, else ``.venv-bench`` (made on first use)."""
    if has_requirements(sys.executable):
        return
    for python in (ROOT / ".venv-newest" / "bin" / "python", VENV / "bin" / "python"):
        if python.exists() and has_requirements(python):
            os.execv(str(python), [str(python), __file__, *sys.argv[1:]])
    print(f"=== making {VENV.name}: signaltrace[otel] and {', '.join(REQUIREMENTS)}", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    python = VENV / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[otel]", *REQUIREMENTS], check=True)
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def server_environment(database: Path, service: str, mode: str, counter_port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        PYTHONPATH=os.pathsep.join([str(ROOT), str(DEMO)]),
        BENCH_DATABASE=str(database),
        BENCH_SIGNALTRACE=json.dumps(MODES[mode]["signaltrace"]),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{counter_port}",
        OTEL_SERVICE_NAME=service,
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=MODES[mode]["disabled"],
    )
    return env


def prepare_database(path: Path, counter_port: int) -> None:
    """Migrate and seed the database every phase starts from a copy of; WAL mode (it persists)."""
    env = server_environment(path, "bench-setup", "off", counter_port)
    for command in (["migrate", "--noinput", "-v", "0"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, str(DEMO / "manage.py"), *command],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


# ------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_counter() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "otlp_counter.py")], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, int(line.split()[1])


def read_counts(counter_port: int) -> dict[str, dict[str, int]]:
    connection = http.client.HTTPConnection("127.0.0.1", counter_port, timeout=10)
    connection.request("GET", "/counts")
    counts: dict[str, dict[str, int]] = json.loads(connection.getresponse().read())
    connection.close()
    return counts


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", "1", "--threads", "4", "--worker-class", "gthread",
        "--bind", f"127.0.0.1:{port}", "--chdir", str(DEMO), "--log-level", "warning",
        "demo_site.wsgi:application",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env)


def worker_pid(master: int) -> int | None:
    """The pid of gunicorn's one worker (a child of the master), from /proc; None elsewhere."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == master:
            return int(entry.name)
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (/proc/<pid>/stat), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM: gunicorn's graceful stop; the worker's exit flushes its batch span processor."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# ------------------------------------------------------------------ load


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None


class Client(threading.Thread):
    """One simulated user: keep-alive requests until ``deadline``, drawn from :data:`MIX`."""

    def __init__(self, port: int, number: int, seed: int, stop: float, measure_from: float, tag: str) -> None:
        super().__init__(daemon=True)
        self.port, self.number, self.stop, self.measure_from, self.tag = port, number, stop, measure_from, tag
        self.random = random.Random(seed)
        self.sent = 0  # every request sent, warm-up included: each makes one request span
        self.results = Results()
        self.connection: http.client.HTTPConnection | None = None
        self.token = ""

    def request(
        self, method: str, path: str, body: str | None = None
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        headers = {"Host": "127.0.0.1"}
        if self.token:
            headers["Cookie"] = f"csrftoken={self.token}"
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                self.sent += 1  # answered: Django saw it (a refused keep-alive never reached it)
                return response.status, response.read(), response
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None  # keep-alive closed by the server: once more on a new one
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def run(self) -> None:
        status, _body, response = self.request("GET", "/signup/")
        cookie = response.getheader("Set-Cookie") or ""
        self.token = cookie.split("csrftoken=", 1)[1].split(";", 1)[0] if "csrftoken=" in cookie else ""
        count = 0
        while True:
            now = time.perf_counter()
            if now >= self.stop:
                break
            kind = self.random.choices([kind for kind, _ in MIX], [share for _, share in MIX])[0]
            started = time.perf_counter()
            try:
                if kind == "home":
                    status, body, _ = self.request("GET", "/")
                    ok = status == 200
                elif kind == "users":
                    status, body, _ = self.request("GET", "/users/")
                    ok = status == 200
                else:
                    count += 1
                    name = f"{self.tag}-{self.number}-{count}"
                    form = {
                        "csrfmiddlewaretoken": self.token,
                        "username": name,
                        "password1": "bench-Pa55word",
                        "password2": "bench-Pa55word",
                        "bio": "Signed up by benchmarks/production.py",
                    }
                    status, body, _ = self.request("POST", "/signup/", urllib.parse.urlencode(form))
                    ok = status == 200 and b"Welcome, " in body
            except (http.client.HTTPException, OSError):
                ok = False
            elapsed = time.perf_counter() - started
            if started >= self.measure_from:
                results = self.results
                results.requests += 1
                results.latencies.append(elapsed)
                results.by_kind[kind] = results.by_kind.get(kind, 0) + 1
                if not ok:
                    results.errors += 1
                    if results.first_error is None:
                        results.first_error = f"{kind}: {status} {body[:200]!r}"
        if self.connection is not None:
            self.connection.close()


def wait_until_ready(port: int, server: subprocess.Popen[bytes]) -> int:
    """Poll the home page until it answers 200; returns how many requests that took."""
    deadline = time.monotonic() + 60
    sent = 0
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            sent += 1
            connection.request("GET", "/", headers={"Host": "127.0.0.1"})
            status = connection.getresponse().status
            connection.close()
            if status == 200:
                return sent
        except OSError:
            sent -= 1  # refused: no request reached Django
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 60 s")


@dataclass
class Server:
    """One gunicorn serving one mode for the whole run, on its own copy of the database."""

    mode: str
    process: subprocess.Popen[bytes]
    port: int
    service: str
    database: Path
    worker: int | None = None
    sent: int = 0  # requests it answered: each made one request span
    spans: dict[str, int] = field(default_factory=dict)


@dataclass
class Phase:
    mode: str
    round: int
    seconds: float
    requests: int
    errors: int
    p50: float
    p99: float
    cpu: float | None  # the worker's CPU seconds while measured
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request(self) -> float | None:
        return None if self.cpu is None else self.cpu / self.requests

    def summary(self) -> str:
        cpu = (
            ""
            if self.cpu_per_request is None
            else f", worker CPU {self.cpu_per_request * 1000:.2f} ms/request"
        )
        return (
            f"{self.rate:6.0f} requests/s, p50 {self.p50 * 1000:.1f} ms, p99 {self.p99 * 1000:.1f} ms"
            f"{cpu}, {self.errors} errors" + (f" (first: {self.first_error})" if self.first_error else "")
        )


def start_servers(template: Path, work: Path, counter_port: int) -> dict[str, Server]:
    servers = {}
    for mode in MODES:
        database = work / f"{mode}.sqlite3"
        shutil.copyfile(template, database)
        service = f"bench-{mode}"
        port = free_port()
        process = start_server(server_environment(database, service, mode, counter_port), port)
        servers[mode] = Server(mode, process, port, service, database)
    for server in servers.values():
        server.sent += wait_until_ready(server.port, server.process)
        server.worker = worker_pid(server.process.pid)
    return servers


def forget_sign_ups(database: Path) -> None:
    """Delete the users (and profiles) the load client signed up, between phases: the user
    list renders every user, so without this each round would serve a longer page."""
    with sqlite3.connect(database, timeout=60) as connection:
        bench_users = "SELECT id FROM auth_user WHERE username GLOB 'r[0-9]*-*'"
        connection.execute(f"DELETE FROM accounts_profile WHERE user_id IN ({bench_users})")
        connection.execute("DELETE FROM auth_user WHERE username GLOB 'r[0-9]*-*'")
    connection.close()


def load(server: Server, seconds: float, ramp: float, round_number: int, clients: int) -> Phase:
    """``clients`` users on ``server`` for ``ramp`` + ``seconds``; the last ``seconds`` are measured."""
    start = time.perf_counter()
    measure_from = start + ramp
    stop = measure_from + seconds
    users = [
        Client(server.port, number, round_number * 1000 + number, stop, measure_from, f"r{round_number}")
        for number in range(clients)
    ]
    for user in users:
        user.start()
    time.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu_start = cpu_seconds(server.worker)
    time.sleep(max(0.0, stop - time.perf_counter()))
    cpu_end = cpu_seconds(server.worker)
    for user in users:
        user.join()
    forget_sign_ups(server.database)
    server.sent += sum(user.sent for user in users)
    latencies = sorted(latency for user in users for latency in user.results.latencies)
    return Phase(
        mode=server.mode,
        round=round_number,
        seconds=seconds,
        requests=len(latencies),
        errors=sum(user.results.errors for user in users),
        p50=statistics.median(latencies),
        p99=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        cpu=None if cpu_start is None or cpu_end is None else cpu_end - cpu_start,
        first_error=next((user.results.first_error for user in users if user.results.first_error), None),
    )


def wait_for_spans(counter_port: int, service: str, expected_requests: int) -> dict[str, int]:
    """The receiver's counts for one server, once the request spans of every request it answered
    arrived (its worker flushed on exit; a few seconds at most)."""
    deadline = time.monotonic() + 30
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = read_counts(counter_port).get(service, {})
        if counts.get("server", 0) >= expected_requests:
            break
        time.sleep(0.5)
    return counts


# ------------------------------------------------------------------ report


def ratio_rows(phases: list[Phase], servers: dict[str, Server]) -> list[str]:
    by_round: dict[int, dict[str, Phase]] = {}
    for phase in phases:
        by_round.setdefault(phase.round, {})[phase.mode] = phase
    lines = [
        "| signaltrace | requests/s (off → on) | requests/s on/off | p50 on/off | p99 on/off "
        "| worker CPU per request on/off | signal spans / request | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode in ("defaults", "all"):
        rates, p50s, p99s, offs, ons, cpus = [], [], [], [], [], []
        for rounds in by_round.values():
            off, on = rounds["off"], rounds[mode]
            rates.append(on.rate / off.rate)
            p50s.append(on.p50 / off.p50)
            p99s.append(on.p99 / off.p99)
            offs.append(off.rate)
            ons.append(on.rate)
            if on.cpu_per_request is not None and off.cpu_per_request:
                cpus.append(on.cpu_per_request / off.cpu_per_request)
        rate = statistics.median(rates)
        verdict = "ok" if rate >= TARGETS[mode] else "under"
        cpu = f"{statistics.median(cpus):.3f}" if cpus else "n/a"
        server = servers[mode]
        per_request = server.spans.get("signal", 0) / max(1, server.sent)
        lines.append(
            f"| {mode} | {statistics.median(offs):.0f} → {statistics.median(ons):.0f} "
            f"| **{rate:.3f}** ({min(rates):.2f} to {max(rates):.2f}) "
            f"| {statistics.median(p50s):.3f} | {statistics.median(p99s):.3f} | {cpu} "
            f"| {per_request:.2f} | ≥ {TARGETS[mode]} {verdict} |"
        )
    return lines


def span_rows(servers: dict[str, Server]) -> list[str]:
    lines = [
        "| server | requests answered | request spans received | signal spans (dispatch + receiver) "
        "| spans |",
        "|---|---|---|---|---|",
    ]
    for server in servers.values():
        spans = server.spans
        lines.append(
            f"| {server.mode} | {server.sent} | {spans.get('server', 0)} "
            f"| {spans.get('signal', 0)} ({spans.get('dispatch', 0)} + {spans.get('receiver', 0)}) "
            f"| {spans.get('spans', 0)} |"
        )
    return lines


def phase_rows(phases: list[Phase]) -> list[str]:
    lines = [
        "| round | phase | requests/s | p50 ms | p99 ms | worker CPU ms / request | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase in phases:
        cpu = "n/a" if phase.cpu_per_request is None else f"{phase.cpu_per_request * 1000:.2f}"
        lines.append(
            f"| {phase.round} | {phase.mode} | {phase.rate:.0f} | {phase.p50 * 1000:.1f} "
            f"| {phase.p99 * 1000:.1f} | {cpu} | {phase.errors} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=6, help="measured seconds per phase")
    parser.add_argument(
        "--ramp", type=float, default=0.5, help="unmeasured seconds at the start of each phase"
    )
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds per server at the start")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    ensure_environment()

    import django

    counter, counter_port = start_counter()
    phases: list[Phase] = []
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="signaltrace-bench-") as directory:
            work = Path(directory)
            template = work / "template.sqlite3"
            prepare_database(template, counter_port)
            servers = start_servers(template, work, counter_port)
            try:
                for server in servers.values():
                    load(server, args.warmup, 0, 0, args.clients)
                order = list(MODES)
                for round_number in range(1, args.rounds + 1):
                    for mode in order:
                        phase = load(servers[mode], args.seconds, args.ramp, round_number, args.clients)
                        phases.append(phase)
                        print(f"round {round_number:2} {mode:>8}: {phase.summary()}", flush=True)
                    order = order[1:] + order[:1]
            finally:
                for server in servers.values():
                    stop_server(server.process)
            for server in servers.values():
                server.spans = wait_for_spans(counter_port, server.service, server.sent)
    finally:
        counter.terminate()
        counter.wait()
    load_average = os.getloadavg()
    print()
    print(
        f"Django {django.get_version()}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
        f"gunicorn 1 worker x 4 threads per server; {args.clients} clients; "
        f"{args.rounds} rounds x {args.seconds:.0f} s per phase; "
        f"{time.monotonic() - started:.0f} s in all; load average after: {load_average[0]:.2f}"
    )
    print()
    print("\n".join(ratio_rows(phases, servers)))
    print()
    print("\n".join(span_rows(servers)))
    print()
    print("\n".join(phase_rows(phases)))


if __name__ == "__main__":
    main()
