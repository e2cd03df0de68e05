"""Load Sotopia records into a running service: ``python -m api.sotopia.load FILE... [--url]``.

FILE is any of
- a JSON list of records, or a JSON object whose values are lists of them (keys such as
  "agents", "scenarios"/"environments", "relationships", "evaluation_dimensions");
- JSON lines, one record per line (Sotopia's ``agentprofiles_to_jsonl`` and friends);
- a directory as Sotopia's local backend writes it (``~/.sotopia/data``: AgentProfile/,
  EnvironmentProfile/, RelationshipProfile/, one <pk>.json each).
A record's kind is told by its fields (first_name: an agent; scenario: a scenario;
agent_1_id: a relationship; dimensions: an evaluation dimension list). Each is POSTed as
Sotopia's clients post it, so its pk is kept and loading twice changes nothing; fields this
version of Sotopia's models does not have are dropped (and counted). Records that fail are
reported and the others still load; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Iterator

import httpx

from api.settings import ServiceSettings

from schemas.sotopia import (AgentProfile, CustomEvaluationDimensionsWrapper,
                             EnvironmentProfile, RelationshipProfile)

__all__ = ["load", "main", "records_in"]

#: route and model per kind, in loading order (relationships name agents)
KINDS: dict[str, tuple[str, type]] = {
    "agent": ("/agents", AgentProfile), "scenario": ("/scenarios", EnvironmentProfile),
    "relationship": ("/relationship", RelationshipProfile),
    "dimension_list": ("/evaluation_dimensions", CustomEvaluationDimensionsWrapper)}


def kind_of(record: dict[str, Any]) -> str | None:
    if "first_name" in record:
        return "agent"
    if "agent_1_id" in record:
        return "relationship"
    if "scenario" in record:
        return "scenario"
    if "dimensions" in record:
        return "dimension_list"
    return None


def _from_json(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict) and kind_of(value) is None:
        for inner in value.values():
            yield from _from_json(inner)
    elif isinstance(value, dict):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _from_json(item)


def records_in(path: str) -> Iterator[dict[str, Any]]:
    if os.path.isdir(path):
        for root, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                if name.endswith((".json", ".jsonl")):
                    yield from records_in(os.path.join(root, name))
        return
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        yield from _from_json(json.loads(text))
    except ValueError:  # JSON lines
        for line in text.splitlines():
            if line.strip():
                yield from _from_json(json.loads(line))


def load(paths: list[str], url: str, out: Any = sys.stdout) -> tuple[dict[str, int], int]:
    """(records loaded per kind, failures)."""
    by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    skipped = 0
    for path in paths:
        for record in records_in(path):
            kind = kind_of(record)
            if kind is None:
                skipped += 1
            else:
                by_kind[kind].append(record)
    loaded, failed, dropped = {k: 0 for k in KINDS}, 0, 0
    with httpx.Client(base_url=url.rstrip("/"), timeout=60) as client:
        for kind, records in by_kind.items():
            route, model = KINDS[kind]
            known = set(model.model_fields)
            for record in records:
                body = {k: v for k, v in record.items() if k in known}
                dropped += len(record) - len(body)
                r = client.post(route, json=body)
                if r.status_code == 200:
                    loaded[kind] += 1
                else:
                    failed += 1
                    print(f"{kind} {record.get('pk') or record.get('name') or '?'}: "
                          f"{r.status_code} {r.text[:300]}", file=out)
    print(f"loaded {', '.join(f'{n} {k}s' for k, n in loaded.items())}; {failed} failed, "
          f"{skipped} not Sotopia records, {dropped} unknown fields dropped", file=out)
    return loaded, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.sotopia.load",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="FILE")
    parser.add_argument("--url", default=ServiceSettings.load().url or "http://127.0.0.1:8000",
                        help="the service (default $ACTORLOG_URL or http://127.0.0.1:8000)")
    args = parser.parse_args(argv)
    _, failed = load(args.paths, args.url)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
