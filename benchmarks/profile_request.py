"""Where one request's time goes: statements, round trips and CPU per layer (issue 14, item 1).

Builds the QR and P2P benchmarks' world on a fresh PostgreSQL database (64 wallet users with a
debit card, 50 merchants, a hot one at 20 %), then runs ``flashpay serve --workers 2`` twice:

1. **One request at a time** (an httpx client, ``--requests`` of each kind: scan-to-pay
   ``POST /v1/payments/qr``, payment code ``POST /v1/merchant/payments``, P2P
   ``POST /v1/transfers``), with ``log_statement = all`` on the database: every statement the
   server's connections send, read back from PostgreSQL's log, grouped per kind and divided by
   the number of requests; and the workers' CPU per layer (the sampler in
   ``benchmarks/_sampler/sitecustomize.py``) and the database backends' CPU (``/proc``).
2. **Under load** (``wrk``, ``--concurrency`` connections, ``--seconds`` per kind, logging off):
   the same CPU split per request with the group commit batching concurrent requests.

    cd benchmarks && PYTHONPATH=../src ../.venv/bin/python profile_request.py --json profile.json

Needs root (or the postgres group) to read ``--pg-log``, and ``wrk``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg

from api_p2p_bench import (
    ADMIN_URL_DEFAULT,
    P2P_PIN,
    P2P_USERS,
    WRK_THREADS,
    _drop_database,
    _fresh_database,
    _p2p_members,
    _start_server,
    _worker_pids,
    _wrk,
)
from api_qr_bench import _LUA, HOT_SHARE, _codes, _shops
from flashpay.platform import Platform

PG_LOG = "/var/log/postgresql/postgresql-15-main.log"
SAMPLER_DIR = Path(__file__).parent / "_sampler"
_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[(\d+)\] (\S*)@(\S*) (\w+):  (.*)$")
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+\"?(\w+)", re.IGNORECASE)


def _statements(log: Path, offset: int, database: str) -> list[str]:
    """The statements logged for ``database`` after byte ``offset`` of the server log."""
    out: list[str] = []
    current: list[str] | None = None
    with log.open("rb") as file:
        file.seek(offset)
        for raw in file.read().decode("utf-8", "replace").splitlines():
            match = _ENTRY.match(raw)
            if match is None:
                if current is not None:
                    current.append(raw.strip())
                continue
            if current is not None:
                out.append(" ".join(current))
                current = None
            _pid, _user, db, level, message = match.groups()
            if db != database or level != "LOG":
                continue
            for prefix in ("statement: ", "execute "):
                if message.startswith(prefix):
                    text = message[len(prefix) :]
                    if prefix == "execute ":
                        text = text.partition(": ")[2]
                    current = [text]
    if current is not None:
        out.append(" ".join(current))
    return out


def _shape(statement: str) -> str:
    """``INSERT payments``, ``SELECT cards+wallet_cards``: the verb and the tables."""
    words = statement.split()
    verb = words[0].upper() if words else "?"
    if verb == "WITH":
        verb = next((w.upper() for w in words if w.upper() in ("INSERT", "UPDATE", "DELETE")), verb)
    tables = sorted(set(_TABLE.findall(statement)))
    return f"{verb} {'+'.join(tables)}".strip()


def _log_size(log: Path) -> int:
    return log.stat().st_size


def _backend_cpu(admin_url: str, database: str) -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL backend connected to ``database``."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        pids = [
            int(row[0])
            for row in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
            )
        ]
    return {pid: cpu for pid in pids if (cpu := _proc_cpu(pid)) is not None}


def _proc_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sampled(sample_dir: Path, pids: list[int]) -> dict[str, dict[str, float]]:
    """The workers' cumulative CPU per layer (and per layer in the driver), summed."""
    time.sleep(0.6)  # the sampler writes twice a second
    total: dict[str, dict[str, float]] = {"cpu": {}, "driver": {}, "process": {"all": 0.0}}
    for pid in pids:
        data = json.loads((sample_dir / f"cpu-{pid}.json").read_text())
        for part in ("cpu", "driver"):
            for layer, seconds in data[part].items():
                total[part][layer] = total[part].get(layer, 0.0) + seconds
        total["process"]["all"] += data["process"]
        total["process"]["sampler"] = total["process"].get("sampler", 0.0) + data["sampler"]
    return total


def _minus(after: dict[str, dict[str, float]], before: dict[str, dict[str, float]]):
    return {
        part: {k: v - before[part].get(k, 0.0) for k, v in values.items()}
        for part, values in after.items()
    }


class Phase:
    """The workers' and the database's CPU over one stretch of requests."""

    def __init__(self, admin_url: str, database: str, sample_dir: Path, pids: list[int]):
        self.admin_url, self.database, self.sample_dir, self.pids = (
            admin_url,
            database,
            sample_dir,
            pids,
        )

    def __enter__(self) -> Phase:
        self.sampled = _sampled(self.sample_dir, self.pids)
        self.db = _backend_cpu(self.admin_url, self.database)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.layers = _minus(_sampled(self.sample_dir, self.pids), self.sampled)
        after = _backend_cpu(self.admin_url, self.database)
        self.db_cpu = sum(cpu - self.db.get(pid, 0.0) for pid, cpu in after.items())

    def report(self, requests: int) -> dict[str, object]:
        per = 1000.0 / requests
        layers = self.layers["cpu"]
        sampled = sum(layers.values())
        return {
            "requests": requests,
            "seconds": round(self.seconds, 3),
            "worker_cpu_ms_per_request": round(self.layers["process"]["all"] * per, 3),
            "sampler_cpu_ms_per_request": round(self.layers["process"]["sampler"] * per, 3),
            "sampled_cpu_ms_per_request": round(sampled * per, 3),
            "db_backend_cpu_ms_per_request": round(self.db_cpu * per, 3),
            "layers_ms_per_request": {
                k: round(v * per, 3) for k, v in sorted(layers.items(), key=lambda kv: -kv[1])
            },
            "of_which_in_driver_ms": {
                k: round(v * per, 3)
                for k, v in sorted(self.layers["driver"].items(), key=lambda kv: -kv[1])
            },
        }


def _one_at_a_time(base_url: str, kind: str, count: int, world: dict[str, object]) -> int:
    members = world["members"]
    shops = world["shops"]
    codes = world["codes"]
    ok = 0
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for n in range(count):
            member = members[n % len(members)]
            if kind == "scan":
                shop = shops[0] if n % HOT_SHARE == 0 else shops[1 + n % (len(shops) - 1)]
                response = client.post(
                    "/v1/payments/qr",
                    json={"payload": shop[1], "card_id": member.card_id, "amount": "1.23"},
                    headers={"Authorization": f"Bearer {member.token}",
                             "Idempotency-Key": f"prof-scan-{n}"},
                )  # fmt: skip
            elif kind == "code":
                shop = shops[0] if n % HOT_SHARE == 0 else shops[1 + n % (len(shops) - 1)]
                response = client.post(
                    "/v1/merchant/payments",
                    json={"code": codes.pop(), "amount": "1.23"},
                    headers={"X-Api-Key": shop[0], "Idempotency-Key": f"prof-code-{n}"},
                )
            else:
                receiver = members[(n + 1) % len(members)]
                response = client.post(
                    "/v1/transfers",
                    json={"from_card_id": member.card_id, "amount": "0.01",
                          "to_phone": receiver.phone, "pin": P2P_PIN},
                    headers={"Authorization": f"Bearer {member.token}",
                             "Idempotency-Key": f"prof-p2p-{n}"},
                )  # fmt: skip
            ok += response.status_code < 300
    return ok


def _wrk_qr(base_url: str, data_dir: Path, seconds: int, concurrency: int) -> dict[str, object]:
    lua = _LUA.replace("@@DIR@@", str(data_dir)).replace("@@HOT@@", str(HOT_SHARE))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    run = subprocess.run(
        ["wrk", "-t", str(WRK_THREADS), "-c", str(concurrency), "-d", f"{seconds}s",
         "-s", script.name, base_url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    os.unlink(script.name)
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    requests, errors, duration_us, p50_us, p99_us = line.split()[1:]
    return {
        "requests": int(requests),
        "errors": int(errors),
        "per_second": round(int(requests) / (int(duration_us) / 1e6), 1),
        "p50_ms": round(float(p50_us) / 1000, 2),
        "p99_ms": round(float(p99_us) / 1000, 2),
    }


def _serve(url: str, data_dir: Path, sample_dir: Path, workers: int):
    os.environ["FLASHPAY_SAMPLE_DIR"] = str(sample_dir)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(SAMPLER_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    )
    server, base_url = _start_server(url, workers, data_dir)
    pids = _worker_pids(server.pid)
    return server, base_url, pids


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get("FLASHPAY_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=100, help="per kind, one at a time")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=8, help="per kind, under load")
    parser.add_argument("--pg-log", type=Path, default=Path(PG_LOG))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    admin_url = args.admin_url or ADMIN_URL_DEFAULT
    url = _fresh_database(admin_url)
    database = url.rpartition("/")[2]
    data_dir = Path(tempfile.mkdtemp(prefix="flashpay-profile-"))
    sample_dir = data_dir / "samples"
    sample_dir.mkdir()
    report: dict[str, object] = {}
    server = None
    try:
        members = _p2p_members(url, data_dir, P2P_USERS)
        platform = Platform.open(url, data_directory=data_dir)
        try:
            shops = _shops(platform)
            codes = _codes(platform, members, args.requests)
        finally:
            platform.close()
        world = {"members": members, "shops": shops, "codes": codes}

        # 1. One request at a time, every statement logged.
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f"ALTER DATABASE \"{database}\" SET log_statement = 'all'")
        server, base_url, pids = _serve(url, data_dir, sample_dir, args.workers)
        sequential: dict[str, object] = {}
        for kind in ("scan", "code", "p2p"):
            offset = _log_size(args.pg_log)
            with Phase(admin_url, database, sample_dir, pids) as phase:
                ok = _one_at_a_time(base_url, kind, args.requests, world)
            statements = _statements(args.pg_log, offset, database)
            shapes = Counter(_shape(s) for s in statements)
            entry = phase.report(args.requests)
            entry["succeeded"] = ok
            entry["statements_per_request"] = round(len(statements) / args.requests, 2)
            entry["statements"] = {k: round(v / args.requests, 2) for k, v in shapes.most_common()}
            sequential[kind] = entry
        _stop(server)
        server = None
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'ALTER DATABASE "{database}" RESET log_statement')
        report["one_at_a_time"] = sequential

        # 2. Under load, logging off.
        platform = Platform.open(url, data_directory=data_dir)
        try:
            codes = _codes(platform, members, 400 * args.seconds // 2)
        finally:
            platform.close()
        (data_dir / "codes.tsv").write_text("\n".join(codes) + "\n")
        (data_dir / "members.tsv").write_text("".join(f"{m.token}\t{m.card_id}\n" for m in members))
        (data_dir / "shops.tsv").write_text("".join(f"{k}\t{p}\n" for k, p, _ in shops))
        server, base_url, pids = _serve(url, data_dir, sample_dir, args.workers)
        loaded: dict[str, object] = {}
        with Phase(admin_url, database, sample_dir, pids) as phase:
            result = _wrk_qr(base_url, data_dir, args.seconds, args.concurrency)
        loaded["qr"] = {**result, **phase.report(max(1, int(result["requests"])))}
        with Phase(admin_url, database, sample_dir, pids) as phase:
            p2p = _wrk(base_url, "p2p", first_id=0, admin_key="", seconds=args.seconds,
                       concurrency=args.concurrency, members=members)  # fmt: skip
        loaded["p2p"] = {
            "requests": p2p.requests, "errors": p2p.errors, "per_second": p2p.per_second,
            "p50_ms": p2p.p50_ms, "p99_ms": p2p.p99_ms, **phase.report(max(1, p2p.requests)),
        }  # fmt: skip
        report[f"under_load_c{args.concurrency}"] = loaded
    finally:
        if server is not None:
            _stop(server)
        _drop_database(admin_url, url)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
