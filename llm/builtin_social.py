"""The built-in model's answers to social simulation requests (the Sotopia family): an agent's
next action and an evaluator's scores, recognised by the JSON schema asked for.

Deterministic and offline, and still not constant: what an agent does depends on who it is,
its goal, the turn, what the other said and the request's seed (an episode asks with a seed of
its own, so repetitions of one scenario and pair differ while a rerun of one episode does not);
it leaves once it judges its goal met (a turn that depends on the agent, the scenario and the
seed); the evaluator scores within each dimension's range from what happened (who spoke how
often, who left, how politely), so scores differ between conversations.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from llm.port import ModelRequest

__all__ = ["social_answer"]

_GESTURES = ("nods slowly", "smiles warmly", "leans forward, listening", "raises an eyebrow",
             "crosses their arms, thinking")
_DEEDS = ("takes out a notebook and writes something down", "pours two cups of tea",
          "checks the calendar on their phone", "hands over a printed page")
_POLITE = ("thank", "please", "sorry", "appreciate", "glad", "happy")


def _hash(*parts: str) -> int:
    return int.from_bytes(hashlib.sha1("|".join(parts).encode()).digest()[:8], "big")


def _text(request: ModelRequest, role: str) -> str:
    return "\n".join(str(m.get("content", "")) for m in request.messages
                     if m.get("role") == role)


def social_answer(request: ModelRequest) -> dict[str, Any] | None:
    """The answer to a social request, or None when the schema is not one of ours."""
    props = (request.json_schema or {}).get("properties") or {}
    if "action_type" in props:
        return _act(request)
    if "evaluations" in props:
        return _judge(request, props["evaluations"])
    return None


def _first(pattern: str, text: str, default: str = "") -> str:
    found = re.search(pattern, text)
    return found.group(1).strip() if found else default


def _act(request: ModelRequest) -> dict[str, Any]:
    system, context = _text(request, "system"), _text(request, "user")
    me = _first(r"Imagine you are (.+?)\. ", system, "me")
    turn = int(_first(r"You are at Turn #(\d+)", system, "0"))
    goal = _first(rf"{re.escape(me)}'s goal: (.*)", context)
    scenario = _first(r"Scenario: (.*)", context)
    heard = [(who, said) for who, said in re.findall(r'Turn #\d+: (.+?)  said: "(.*)"', context)
             if who != me]
    partner = _first(r"Participants: (.*)", context).replace(me, "").replace(" and ", "")
    partner = partner.strip().split(" ")[0] or "there"
    h = _hash(me, goal, scenario, "" if request.seed is None else str(request.seed))
    leave_at = 6 + h % 9
    if turn >= leave_at and heard:
        return {"action_type": "leave", "argument": "", "to": []}
    beat = (turn + h) % 6
    if beat == 5 and turn > 1:
        return {"action_type": "non-verbal communication",
                "argument": _GESTURES[(h + turn) % len(_GESTURES)], "to": []}
    if beat == 4 and turn > 2:
        return {"action_type": "action", "argument": _DEEDS[(h + turn) % len(_DEEDS)],
                "to": []}
    aim = goal.split(".")[0].strip() or "how things are going"
    if not heard:
        line = f"Hi {partner}! There is something I want to bring up: {aim.lower()}."
    else:
        last = heard[-1][1]
        last = last if len(last) <= 60 else last[:57].rstrip() + "..."
        options = (f'You said "{last}". I hear you, but I still care about this: {aim.lower()}.',
                   f"That is fair. Could we find a way that works for both of us? {aim}.",
                   f"Thank you for saying that. Let me be honest about what I need: "
                   f"{aim.lower()}.",
                   "I see where you are coming from. What would you need from me to agree?")
        line = options[(h + turn) % len(options)]
    return {"action_type": "speak", "argument": line, "to": []}


def _judge(request: ModelRequest, evaluations: dict[str, Any]) -> dict[str, Any]:
    system, story = _text(request, "system"), _text(request, "user")
    names = dict(re.findall(r"^(agent_\d+) is (.+)$", system, re.MULTILINE))
    turns = len(re.findall(r"^Turn #\d+:", story, re.MULTILINE))
    out: dict[str, Any] = {}
    for key, schema in (evaluations.get("properties") or {}).items():
        name = names.get(key, key)
        said = re.findall(rf'{re.escape(name)}  said: "(.*?)"', story)
        left = f"{name}  left the conversation" in story
        polite = sum(any(w in s.lower() for w in _POLITE) for s in said)
        scores = {}
        for dim, sub in (schema.get("properties") or {}).items():
            rng = sub["properties"]["score"]
            lo, hi = int(rng.get("minimum", 0)), int(rng.get("maximum", 10))
            h = _hash(story, name, dim)
            frac = {
                "goal": 0.25 + (0.4 if left else 0.0) + 0.05 * min(len(said), 6),
                "believability": 0.65 + 0.05 * (h % 5),
                "relationship": 0.45 + 0.1 * min(polite, 3) + 0.05 * (h % 3),
                "knowledge": 0.3 + 0.05 * min(len(said), 8),
                "secret": 1.0 - (0.1 if h % 5 == 0 else 0.0),
                "social_rules": 1.0 - (0.2 if left and turns <= 3 else 0.0)
                - (0.1 if h % 7 == 0 else 0.0),
                "financial_and_material_benefits": 0.5 + 0.1 * (h % 3),
            }.get(dim, (h % 1000) / 999)
            score = max(lo, min(hi, lo + round(max(0.0, min(1.0, frac)) * (hi - lo))))
            scores[dim] = {"reasoning": (
                f"{name} spoke {len(said)} times in {turns} turns"
                f"{', and left once satisfied' if left else ''}; {polite} of those lines were "
                f"courteous. That puts {dim} at {score} on a scale from {lo} to {hi}."),
                "score": score}
        out[key] = scores
    return {"evaluations": out}
