"""python -m bench [section ...]   (default: all)
sections: codec store pg entities projection thread ray serve service cluster opengpts agent_chat
          sotopia
--quick runs smaller sizes (a smoke check of the bench itself)."""

from __future__ import annotations

import importlib
import sys

SECTIONS = ["codec", "store", "pg", "entities", "projection", "thread", "ray", "serve",
            "service", "cluster", "opengpts", "agent_chat", "sotopia"]


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    chosen = [a for a in argv if not a.startswith("-")] or SECTIONS
    for name in chosen:
        if name not in SECTIONS:
            sys.exit(f"unknown section {name!r}; choose from {', '.join(SECTIONS)}")
    print(f"{'figure':<48} {'value':>14} {'unit':<10}", flush=True)
    for name in chosen:
        print(f"# {name}", flush=True)
        importlib.import_module(f"bench.{name}_bench").run(quick=quick)


if __name__ == "__main__":
    main(sys.argv[1:])
