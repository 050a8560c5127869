"""``flashpay demo``: the main job — a demo payment network, a day of payments, the proof."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from flashpay import config
from flashpay import db as database
from flashpay.cli.common import DataDirOption, DbOption, console, err_console
from flashpay.errors import RefusedError
from flashpay.money import CNY, Money
from flashpay.sim.audit import AuditSummary
from flashpay.sim.live import PASSWORD, LiveOptions, run_live
from flashpay.web.demo import demo_logins

SUMMARY_FILE_NAME = "demo-summary.json"
LIVE_FAST = LiveOptions(users=40, merchants=30)


def _yuan(fen: int) -> str:
    return Money(fen, CNY).format()


def demo(
    db: DbOption = None,
    data_dir: DataDirOption = None,
    users: Annotated[int | None, typer.Option(min=1, max=200_000, help="Wallet users.")] = None,
    merchants: Annotated[int, typer.Option(min=10, max=20_000, help="Merchants.")] = 300,
    days: Annotated[int, typer.Option(min=1, max=30, help="Days of traffic.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same run.")] = 7,
    fast: Annotated[bool, typer.Option("--fast", help="A small run for tests.")] = False,
    promotions: Annotated[
        bool, typer.Option("--promotions/--no-promotions", help="Run the theme month.")
    ] = True,
    transit: Annotated[
        bool, typer.Option("--transit/--no-transit", help="Run the transit day.")
    ] = True,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Where to write the JSON summary.")
    ] = None,
) -> None:
    """Build the demo network, run a day of payments through the services, prove the books and
    have the audit log co-signed, print a summary."""
    directory = config.data_dir(data_dir)
    url = config.database_url(db, data_directory=directory)
    if database.is_sqlite(url):
        path = database.sqlite_path(url)
        if path is not None and db is None:  # the demo owns its default database file
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
    options = LiveOptions(
        seed=seed,
        users=users or (LIVE_FAST.users if fast else LiveOptions().users),
        merchants=LIVE_FAST.merchants if fast else merchants,
        days=days,
        promotions=promotions,
        transit=transit,
    )
    console.print(
        f"[bold]flashpay demo[/bold]: {options.users:,} users, {options.merchants:,} merchants, "
        f"{options.days} day(s), seed {options.seed}, through the wallet, payment and P2P "
        f"services → {url}"
    )
    with _progress() as (progress, advance):
        try:
            live = run_live(url, options, data_directory=directory, progress=advance)
        except (ValueError, RefusedError) as exc:  # a bad option, or a refused set-up request
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        del progress
    _print_live(live.summary, live.timing)
    _print_audit(live.audit)
    target = json_path or directory / SUMMARY_FILE_NAME
    _write(target, live.summary, live.timing, live.audit)
    console.print(f"\nJSON summary: {target}; ground truth: {directory / 'ground-truth.jsonl'}")
    _next(directory, db, data_dir)
    lines = demo_logins(url, data_directory=directory, phone=f"139{0:08d}", password=PASSWORD,
                        base_url="http://127.0.0.1:8000")  # fmt: skip
    console.print("\n".join(lines), highlight=False)
    s = live.summary
    if not s["ledger_check"]["ok"] or not s["books_balance"]:
        raise typer.Exit(1)
    if live.audit is not None and not live.audit.final:
        raise typer.Exit(1)


@contextmanager
def _progress() -> Iterator[tuple[Progress, Callable[[int, int], None]]]:
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("payments", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield progress, advance


def _write(
    target: Path, summary: dict[str, Any], timing: dict[str, float], audit: AuditSummary | None
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"summary": summary, "timing": timing}
    if audit is not None:
        payload["audit_log"] = {
            "leaves": audit.leaves,
            "root_hash": audit.root_hash,
            "final": audit.final,
            "cosigned_by": list(audit.cosigned_by),
            "quorum": audit.quorum,
            "checkpoint": audit.checkpoint,
            "keys_file": audit.keys_file,
        }
    target.write_text(json.dumps(payload, indent=2, ensure_ascii=False))


def _print_audit(audit: AuditSummary | None) -> None:
    if audit is None:
        return
    state = "[green]final[/green]" if audit.final else "[red]NOT final[/red]"
    console.print(
        f"audit log: {audit.leaves:,} leaves (one per ledger chain), root {audit.root_hash}; "
        f"checkpoint {state}, co-signed by {len(audit.cosigned_by)} of 3 member witnesses "
        f"(quorum {audit.quorum}): {', '.join(audit.cosigned_by)}",
        highlight=False,
    )


def _next(directory: Path, db: str | None, data_dir: Path | None) -> None:
    where = f" --db {db}" if db else (f" --data-dir {data_dir}" if data_dir else "")
    console.print(
        f"Next: [bold]flashpay ledger check{where}[/bold] to re-check the books, "
        f"[bold]flashpay chain audit{where} --keys {directory / 'chain' / 'keys.txt'}[/bold] to "
        "re-derive the audit log from the ledger and verify its checkpoint, "
        f"[bold]flashpay serve{where}[/bold] for the HTTP API over this network."
    )


def _print_live(s: dict[str, Any], timing: dict[str, float]) -> None:
    p = s["payments"]
    console.print(
        f"\n{s['users']:,} users with {s['cards']:,} bound cards, {s['merchants']:,} merchants; "
        f"{s['payments_and_transfers']:,} payments ({p['attempted']:,} by QR code, "
        f"{sum(s['transfers'].values()):,} P2P) in {timing['traffic_seconds']:.1f} s "
        f"({timing['payments_per_second']:,.0f}/s), set-up {timing['setup_seconds']:.1f} s"
    )
    console.print(
        _table("payments by way of paying", ("mode", "payments"),
               [(k, f"{n:,}") for k, n in p["by_mode"].items()])
    )  # fmt: skip
    console.print(
        _table("outcomes", ("status", "count"), [(k, f"{n:,}") for k, n in p["outcomes"].items()])
    )
    console.print(
        _table("decline reasons", ("reason", "count"),
               [(k, f"{n:,}") for k, n in p["decline_reasons"].items()])
    )  # fmt: skip
    console.print(
        _table("paid per scene", ("scene", "payments", "volume"),
               [(k, f"{v['count']:,}", _yuan(v["volume_fen"])) for k, v in s["scenes"].items()])
    )  # fmt: skip
    console.print(
        _table("paid per issuing bank", ("issuer", "volume"),
               [(k, _yuan(v)) for k, v in s["paid_by_issuer_fen"].items()])
    )  # fmt: skip
    console.print(
        _table(
            "net position with the network (+ = the network owes it) and income",
            ("institution", "role", "net", "income"),
            [(f"{r['institution']} {r['name']}", r["role"], _yuan(r["net_fen"]),
              _yuan(r["income_fen"])) for r in s["net_positions"]],
            text_columns=2,
        )
    )  # fmt: skip
    if s.get("promotions"):
        console.print(
            _table("theme month: promotions", ("campaign", "budget", "spent", "uses", "state"),
                   [(c["name"], _budget(c), _yuan(c["spent_fen"]), f"{c['uses']:,}",
                     "exhausted" if c["exhausted"] else c["state"]) for c in s["promotions"]])
        )  # fmt: skip
    if s.get("transit"):
        t = s["transit"]
        console.print(
            _table("transit day: subway and buses", ("", "figure"),
                   [("riders", f"{t['riders']:,}"), ("taps", f"{t['taps']:,}"),
                    ("taps refused", ", ".join(f"{k} {n}" for k, n in t["taps_refused"].items())
                     or "0"),
                    ("trips", ", ".join(f"{k} {n}" for k, n in t["by_status"].items())),
                    ("fares", _yuan(t["fares_fen"])),
                    ("caps applied", _yuan(t["caps_applied_fen"])),
                    ("unpaid debits", f"{t['unpaid']} ({_yuan(t['unpaid_fen'])})"),
                    ("deny-listed tokens", f"{t['deny_listed']}")])
        )  # fmt: skip
    console.print(
        f"P2P transfers: {s['transfers']}; refunds: {s['refunds']['count']:,} "
        f"({_yuan(s['refunds']['volume_fen'])}); anomalies injected: {s['anomalies_injected']}"
    )
    http = s["http"]
    console.print(
        f"through the HTTP API: {http['payments']:,} payments with an Idempotency-Key, "
        f"{http['retries_with_the_same_key']:,} client retries with the same key, "
        f"{http['retries_replayed_identically']:,} answered with the stored response "
        "(nothing paid twice)"
    )
    verdict = "[green]ok[/green]" if s["ledger_check"]["ok"] else "[red]FAILED[/red]"
    books = "[green]balance[/green]" if s["books_balance"] else "[red]DO NOT balance[/red]"
    console.print(
        f"ledger check: {verdict} (debits = credits; every balance recomputed); every "
        f"institution's books {books}, mirrored payables included"
    )
    for problem in [*s["ledger_check"]["problems"], *s["book_problems"]]:
        err_console.print(f"[red]{problem}[/red]")


def _budget(c: dict[str, Any]) -> str:
    parts = [] if c["budget_fen"] is None else [_yuan(c["budget_fen"])]
    parts += [] if c["budget_uses"] is None else [f"{c['budget_uses']:,} uses"]
    return ", ".join(parts)


def _table(
    title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], *, text_columns: int = 1
) -> Table:
    """A table: the first ``text_columns`` columns are text, the rest right-aligned figures."""
    table = Table(title=title)
    for n, column in enumerate(columns):
        table.add_column(column, justify="left" if n < text_columns else "right")
    for row in rows:
        table.add_row(*row)
    return table
