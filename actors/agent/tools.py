"""The agent's tools: built-ins that work offline, and Python functions an operator registers.

- ``get_contacts``: the contacts directory, read from the file the operator names in
  ACTORLOG_AGENT_CONTACTS (JSON: a list of objects; or CSV with a header row). Without one it
  has a small demonstration directory, so the document's example ("get all contacts") works
  out of the box.
- ``calculator``: arithmetic on numbers (+ - * / ** % and parentheses), parsed, never eval'd.
- ACTORLOG_AGENT_TOOLS: comma-separated "module:function" paths; each function is wrapped with
  smolagents' @tool (its type hints and docstring's Args section describe it to the model).
A tool that raises becomes the step's error; the agent sees what failed and goes on.
"""

from __future__ import annotations

import ast
import csv
import importlib
import json
import operator
from typing import Any, Callable

from smolagents import Tool, tool

__all__ = ["Calculator", "Contacts", "load_tools"]

DEMO_CONTACTS = [
    {"name": "Ada Lovelace", "email": "ada@example.com", "description": "analyst"},
    {"name": "Alan Turing", "email": "alan@example.com", "description": "codebreaker"},
    {"name": "Grace Hopper", "email": "grace@example.com", "description": "compiler author"},
]


class Contacts(Tool):
    name = "get_contacts"
    description = ("Returns all contacts in the directory as a JSON list of objects with "
                   "name, email and description.")
    inputs: dict[str, Any] = {}
    output_type = "string"

    def __init__(self, path: str | None = None) -> None:
        super().__init__()
        self.path = path

    def forward(self) -> str:
        return json.dumps(read_contacts(self.path), ensure_ascii=False)


def read_contacts(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return DEMO_CONTACTS
    with open(path, encoding="utf-8", newline="") as f:
        if path.lower().endswith(".csv"):
            return [dict(row) for row in csv.DictReader(f)]
        data = json.load(f)
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise ValueError(f"{path}: a contacts file is a JSON list of objects")
    return data


_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod,
    ast.FloorDiv: operator.floordiv, ast.USub: operator.neg, ast.UAdd: operator.pos}


def calculate(expression: str) -> float | int:
    """Arithmetic only: numbers, + - * / // % **, parentheses. Big powers are refused."""
    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.operand))
        raise ValueError(f"not arithmetic: {ast.dump(node)[:80]}")

    if len(expression) > 1000:
        raise ValueError("expression too long")
    return value(ast.parse(expression, mode="eval").body)


class Calculator(Tool):
    name = "calculator"
    description = "Evaluates an arithmetic expression such as '(2 + 3) * 4' and returns the result."
    inputs = {"expression": {"type": "string", "description": "the arithmetic expression"}}
    output_type = "string"

    def forward(self, expression: str) -> str:
        return str(calculate(expression))


def load_tools(contacts_path: str | None = None, modules: str = "") -> list[Tool]:
    """The built-ins and the operator's functions ("module:function", comma-separated)."""
    tools: list[Tool] = [Contacts(contacts_path), Calculator()]
    for path in (p.strip() for p in modules.split(",") if p.strip()):
        module, _, name = path.partition(":")
        if not module or not name:
            raise ValueError(f"an agent tool is 'module:function', not {path!r}")
        fn = getattr(importlib.import_module(module), name)
        tools.append(fn if isinstance(fn, Tool) else tool(fn))
    return tools


def from_environment() -> list[Tool]:
    from actors.agent.settings import AgentSettings

    mine = AgentSettings.load()
    return load_tools(mine.contacts or None, mine.tools)
