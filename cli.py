"""The ``actorlog`` command (installed by the package).

    actorlog serve                      the embedded service (as `bash scripts/dev serve`)
    actorlog simulate [options]         a batch of Sotopia episodes, with a live progress bar
                                        and a summary table at the end
    actorlog avatar [--wav FILE]        an avatar session: the two-step flow, the socket,
                                        heartbeats, WAV audio, interrupt (avatar_client.py)

``simulate`` runs the batch in this program's own embedded runtime (a local Ray, the store
under ACTORLOG_DATA_DIR; do not point it at the data directory of a service that is running)
or, with --url, through a running service's HTTP API (POST /v1/batches). Either way the batch
is an entity: interrupted and run again with the same --batch, it goes on with the episodes
that have no result.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from typing import Any, Callable, Iterator

import avatar_client
from api.settings import ServiceSettings

__all__ = ["main"]


def _list(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()] \
        if values else []


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {"scenarios": _list(args.scenarios), "agents": _list(args.agents),
                            "models": args.models or ["builtin"], "reps": args.reps,
                            "max_turns": args.max_turns, "tag": args.tag or args.batch,
                            "evaluation_dimension_list_name": args.dimensions,
                            "pairing": args.pairing, "attempts": args.attempts}
    return spec


# ------------------------------------------------------------------ two ways to run a batch


class _Local:
    """The batch through this program's own runtime (api/sotopia/runner.py)."""

    def __init__(self) -> None:
        from api.sotopia.runner import Simulations

        self.sims = Simulations.connect()

    def start(self, batch: str, spec: dict[str, Any] | None, concurrency: int | None) -> Any:
        from schemas.sotopia import BatchSpec

        return self.sims.start(batch, BatchSpec(**spec) if spec else None, concurrency)

    def progress(self, batch: str) -> dict[str, Any]:
        return self.sims.progress(batch)

    def results(self, batch: str, by_scenario: bool) -> tuple[list, list]:
        from api.sotopia.batches import summary

        rows = self.sims.results(batch)
        return rows, summary(rows, ("model", "scenario") if by_scenario else ("model",))


class _Remote:
    """The batch through a running service's HTTP API."""

    def __init__(self, url: str) -> None:
        import httpx

        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=120)

    def _ok(self, r: Any) -> Any:
        if r.status_code >= 400:
            raise SystemExit(f"{r.request.method} {r.request.url.path}: {r.status_code} "
                             f"{r.text[:500]}")
        return r.json()

    def start(self, batch: str, spec: dict[str, Any] | None, concurrency: int | None) -> Any:
        return self._ok(self.http.post("/v1/batches", json={
            "batch_id": batch, "spec": spec, "concurrency": concurrency}))

    def progress(self, batch: str) -> dict[str, Any]:
        return self._ok(self.http.get(f"/v1/batches/{batch}"))

    def results(self, batch: str, by_scenario: bool) -> tuple[list, list]:
        body = self._ok(self.http.get(f"/v1/batches/{batch}/results",
                                      params={"by_scenario": by_scenario}))
        return body["rows"], body["summary"]


# ------------------------------------------------------------------ simulate


def _watch(progress: Callable[[], dict[str, Any]], concurrency: int | None, every: float = 0.5
           ) -> Iterator[dict[str, Any]]:
    began, first = time.monotonic(), progress()
    settled0 = first["done"] + first["failed"]
    while True:
        p = progress()
        settled = p["done"] + p["failed"]
        elapsed = time.monotonic() - began
        rate = (settled - settled0) / elapsed if elapsed > 0.5 else 0.0
        left = p["total"] - settled
        yield {**p, "rate": rate, "eta": left / rate if rate > 0 else math.inf,
               "running": min(concurrency or 100, left) if p["status"] == "running" else 0}
        if p["status"] != "running":
            return
        time.sleep(every)


def _progress_bar(watch: Iterator[dict[str, Any]], quiet: bool) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    last: dict[str, Any] = {}
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}")]
    with Progress(*columns, disable=quiet, transient=False) as bar:
        task = bar.add_task("episodes", total=None, info="")
        for p in watch:
            last = p
            eta = "?" if math.isinf(p["eta"]) else f"{p['eta']:.0f} s"
            bar.update(task, total=p["total"], completed=p["done"] + p["failed"],
                       info=f"done {p['done']}  running {p['running']}  failed {p['failed']}"
                            f"  {p['rate']:.1f}/s  ETA {eta}")
    return last


def _ci(v: dict[str, Any]) -> str:
    """The 95% interval's half-width, or why there is none: one sample, or samples that are
    all the same (an interval of zero width would claim a certainty the data do not give)."""
    if v.get("identical"):
        return "all equal"
    if v["ci95"] is None:
        return "one sample"
    return f"± {v['ci95']:.2f}"


def _table(summary: list[dict[str, Any]], by: tuple[str, ...]) -> Any:
    """One row per group and dimension (long, not wide): it fits 80 columns however many
    dimensions a list has."""
    from rich.table import Table

    table = Table(title="SOTOPIA-Eval: mean and 95% CI over both agents")
    for column in (*by, "episodes", "dimension", "n", "mean", "95% CI"):
        table.add_column(column, justify="left" if column in (*by, "dimension") else "right",
                         overflow="fold")
    for entry in summary:
        first = True
        for name, v in entry.items():
            if not isinstance(v, dict):
                continue
            group = [str(entry[k]) if first else "" for k in by]
            table.add_row(*group, str(entry["episodes"]) if first else "", name, str(v["n"]),
                          f"{v['mean']:.2f}", _ci(v))
            first = False
        table.add_section()
    return table


def _write(rows: list[dict[str, Any]], json_path: str | None, csv_path: str | None) -> None:
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    if csv_path:
        fields: list[str] = []
        for row in rows:
            fields += [k for k in row if k not in fields]
        with open(csv_path, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)


def simulate(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    if args.resume and not args.batch:
        console.print("[red]--resume needs --batch ID: the batch to go on with (a new batch's "
                      "id is a timestamp, so it can never be resumed by default)")
        return 2
    args.batch = args.batch or f"batch-{time.strftime('%Y%m%d-%H%M%S')}"
    runner: Any = _Remote(args.url) if args.url else _Local()
    resume = args.resume
    try:
        runner.start(args.batch, None if resume else _spec(args), args.concurrency)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        console.print(f"interrupted before batch {args.batch} started")
        return 130
    except Exception as exc:  # noqa: BLE001 - a refusal, said plainly
        console.print(f"[red]could not start batch {args.batch}: {exc}")
        return 2
    last: dict[str, Any] = {}
    interrupted = False
    try:
        last = _progress_bar(_watch(lambda: runner.progress(args.batch), args.concurrency),
                             args.quiet)
    except KeyboardInterrupt:
        interrupted = True
    by = ("model", "scenario") if args.by_scenario else ("model",)
    try:
        rows, summary = runner.results(args.batch, args.by_scenario)
    except KeyboardInterrupt:
        rows, summary = [], []
    except Exception as exc:  # noqa: BLE001 - said, and the interruption still reported
        if not interrupted:
            raise
        console.print(f"[red]could not read the rows done so far: {exc}")
        rows, summary = [], []
    if interrupted:
        return _interrupted(console, args, rows)
    _write(rows, args.json, args.csv)
    # A terminal's own width; a pipe or file gets 80 columns, which the table fits.
    Console(width=None if sys.stdout.isatty() else 80).print(_table(summary, by))
    console.print(f"batch {args.batch}: {last.get('status')}, {last.get('done')} done, "
                  f"{last.get('failed')} failed, {last.get('resumed')} resumed, of "
                  f"{last.get('total')}")
    return 0 if last.get("status") == "finished" and not last.get("failed") else 1


def _interrupted(console: Any, args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    """Ctrl-C while watching: the rows done so far are written, and how to go on is said.
    The batch itself is an entity: with --url it runs on in the service; run here, it stops
    with this program and its next run goes on from the episodes with no result."""
    done = [r for r in rows if r["status"] != "pending"]
    _write(done, args.json, args.csv)
    again = f"actorlog simulate --batch {args.batch} --resume" + (
        f" --url {args.url}" if args.url else "")
    console.print(f"interrupted at {len(done)}/{len(rows) or '?'}; go on with: {again}")
    if args.url:
        console.print("(the batch runs on in the service meanwhile; stop it with POST "
                      f"/v1/batches/{args.batch}/stop)")
    return 130


def config(args: argparse.Namespace) -> int:
    """The configuration table, made from the settings models (runtime/settings.py)."""
    from api.families import sections
    from runtime.settings import ConfigError, check, table

    if args.check:
        try:
            check(sections())
        except ConfigError as exc:
            print(f"actorlog: {exc}", file=sys.stderr)
            return 2
        print("every setting is valid")
        return 0
    print(table(sections()), end="")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actorlog", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the embedded service (ACTORLOG_* configure it)")
    config = sub.add_parser("config", help="every setting the service reads, as a Markdown "
                                           "table (the README's), or --check the environment")
    config.add_argument("--check", action="store_true",
                        help="check this environment's values: exit 2 naming a bad variable")
    avatar = sub.add_parser("avatar", help="an interactive avatar session (the avatar "
                                           "document's client)")
    avatar_client.add_arguments(avatar)
    sim = sub.add_parser("simulate", help="run a batch of Sotopia episodes")
    sim.add_argument("--scenarios", action="append", metavar="ID|tag:WORD,...",
                     help="scenario ids or tag:<keyword> (default: every scenario)")
    sim.add_argument("--agents", action="append", metavar="ID,...",
                     help="agent ids (default: every agent), paired by --pairing")
    sim.add_argument("--pairing", default="consecutive",
                     help="consecutive (a0+a1, a2+a3...), all, or sample:N per scenario")
    sim.add_argument("--models", action="append", metavar="NAME|EVAL,A1,A2",
                     help="a model per run of the grid: one name plays and judges, or "
                          "evaluator,agent1,agent2 (default: builtin); repeat for several")
    sim.add_argument("--reps", type=int, default=1, help="repetitions of each episode")
    sim.add_argument("--concurrency", type=int, default=None,
                     help="episodes running at once in this batch (default: 100, or with "
                          "--resume the batch's last run's)")
    sim.add_argument("--batch", default=None,
                     help="the batch id (default: batch-<date>-<time>): run it again with "
                          "--resume to go on where it stopped")
    sim.add_argument("--resume", action="store_true",
                     help="go on with an existing batch as planned (no grid options)")
    sim.add_argument("--max-turns", type=int, default=20)
    sim.add_argument("--tag", default=None, help="the episodes' tag (default: the batch id)")
    sim.add_argument("--dimensions", default="sotopia",
                     help="the evaluation dimension list (default: SOTOPIA-Eval)")
    sim.add_argument("--attempts", type=int, default=2,
                     help="runs of an episode that fails, each a new episode")
    sim.add_argument("--by-scenario", action="store_true",
                     help="summarise per model and scenario")
    sim.add_argument("--json", metavar="FILE", help="every episode's scores, as JSON")
    sim.add_argument("--csv", metavar="FILE", help="every episode's scores, as CSV")
    sim.add_argument("--url", default=ServiceSettings.load().url or None,
                     help="a running service (default: this program's own runtime)")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        import embedded

        return embedded.main() or 0
    if args.command == "avatar":
        return avatar_client.main(args)
    if args.command == "config":
        return config(args)
    return simulate(args)


if __name__ == "__main__":
    sys.exit(main())
