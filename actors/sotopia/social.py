"""The social episode's rules as pure functions (no I/O, no model): what each agent is told,
how actions read, when an episode ends, what the agents and the evaluator are asked, and how
scores add up. The episode kind (episode.py) folds and decides with them; readers render an
EpisodeLog with them; tests call them directly.

Behaviour follows Sotopia's loop (../shared/specs/sotopia.md, section 5): round-robin turns
with one acting agent per step, the five action types, private messages, termination after
max_turns steps, when fewer than two agents remain, or after more than two consecutive
"did nothing" rows; SOTOPIA-Eval at the end, each dimension averaged into overall_score. The
prompts are ours.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_STALE", "action_schema", "action_text", "agent_prompt", "aggregate",
           "background", "evaluation_prompt", "evaluation_schema", "name_of", "observation",
           "render_messages", "termination", "visible_goal"]

MAX_STALE = 2
_OPEN = re.compile(r"\s*<(extra_info|clarification_hint|strategy_hint)>\s*")
_CLOSE = re.compile(r"\s*</(extra_info|clarification_hint|strategy_hint)>")


def name_of(profile: dict[str, Any]) -> str:
    return f"{profile.get('first_name', '')} {profile.get('last_name', '')}".strip()


def _full_bio(p: dict[str, Any]) -> str:
    return (f"{name_of(p)} is a {p.get('age', 0)}-year-old {p.get('gender', '').lower()} "
            f"{p.get('occupation', '').lower()}. {p.get('gender_pronoun', '')} pronouns. "
            f"{p.get('public_info', '')} Personality and values description: "
            f"{p.get('personality_and_values', '')} {p.get('first_name', '')}'s secrets: "
            f"{p.get('secret', '')}")


def _seen_bio(p: dict[str, Any], relationship: int) -> str:
    """What an agent knows of the other, by the scenario's relationship (never the secret)."""
    if relationship <= 0:
        return "Unknown"
    if relationship == 1:
        return f"{name_of(p)}; you know their name and nothing more."
    basic = (f"{name_of(p)} is a {p.get('age', 0)}-year-old {p.get('gender', '').lower()} "
             f"{p.get('occupation', '').lower()}. {p.get('gender_pronoun', '')} pronouns.")
    if relationship == 2:
        return basic
    return (f"{basic} {p.get('public_info', '')} Personality and values description: "
            f"{p.get('personality_and_values', '')}")


def visible_goal(goal: str) -> str:
    """A goal as its own agent reads it: the hint tags dropped, their text kept as sentences
    of their own."""
    goal = _OPEN.sub(lambda m: " " if m.start() == 0 or goal[m.start() - 1] in ".!?" else
                     ". ", goal)
    return _CLOSE.sub("", goal).strip()


def background(scenario: dict[str, Any], agents: list[dict[str, Any]], viewer: int | None
               ) -> str:
    """The opening context: ``viewer`` sees its own background and goal and what the
    relationship lets it know of the others; None is the evaluator's omniscient view."""
    names = [name_of(a) for a in agents]
    goals = list(scenario.get("agent_goals") or [])
    relationship = int(scenario.get("relationship") or 0)
    lines = ["", "Here is the context of this interaction:",
             f"Scenario: {scenario.get('scenario', '')}",
             f"Participants: {' and '.join(names)}"]
    for i, agent in enumerate(agents):
        bio = (_full_bio(agent) if viewer is None or viewer == i
               else _seen_bio(agent, relationship))
        lines.append(f"{names[i]}'s background: {bio}")
    for i in range(len(agents)):
        goal = goals[i] if i < len(goals) else ""
        lines.append(f"{names[i]}'s goal: "
                     f"{visible_goal(goal) if viewer is None or viewer == i else 'Unknown'}")
    lines.append("Conversation Starts:")
    return "\n".join(lines) + "\n"


def action_text(action: dict[str, Any]) -> str:
    """How an action reads in the log (with Sotopia's leading space)."""
    kind, arg = action.get("action_type", "none"), action.get("argument", "")
    text = {"none": " did nothing", "speak": f' said: "{arg}"',
            "non-verbal communication": f" [non-verbal communication] {arg}",
            "action": f" [action] {arg}", "leave": " left the conversation"}.get(kind,
                                                                              " did nothing")
    to = action.get("to") or []
    if to and kind != "none":
        text = f" [private to {to!r}]" + text
    return text


def observation(step: int, names: list[str], actions: list[dict[str, Any]], viewer: int
                ) -> str:
    """What ``viewer`` is told after step ``step``: every action it may see, none hidden."""
    parts = []
    for i, action in enumerate(actions):
        if action.get("action_type", "none") == "none":
            continue
        to = action.get("to") or []
        if to and viewer != i and names[viewer] not in to:
            continue  # private to others
        parts.append(f"{names[i]} {action_text(action)}")
    return f"Turn #{step}: {';'.join(parts)}\n"


def render_messages(scenario: dict[str, Any], agents: list[dict[str, Any]],
                    steps: list[list[dict[str, Any]]], evaluation: tuple[Any, str] | None
                    ) -> list[list[list[str]]]:
    """EpisodeLog.messages: the opening observations, each step's actions appended to the turn
    they answer, the next observations as a new turn; then the evaluation's two rows."""
    names = [name_of(a) for a in agents]
    turns = [[["Environment", names[i], background(scenario, agents, i)]
              for i in range(len(agents))]]
    for step, actions in enumerate(steps):
        turns[-1].extend([names[i], "Environment", action_text(a)]
                         for i, a in enumerate(actions))
        turns.append([["Environment", names[i], observation(step, names, actions, i)]
                      for i in range(len(agents))])
    if evaluation is not None:
        rewards, reasoning = evaluation
        shown = [tuple(r) if isinstance(r, list) else r for r in rewards]  # as Sotopia prints
        turns.append([["Evaluation", "Rewards", str(shown)]])
        turns.append([["Evaluation", "Reasoning", reasoning]])
    return turns


def termination(steps: list[list[dict[str, Any]]], max_turns: int) -> str:
    """The reasons the episode ends after these steps ("" while it goes on)."""
    reasons = ""
    if len(steps) >= max_turns:
        reasons += "The conversation is too long; "
    if steps and sum(1 for a in steps[-1] if a.get("action_type") != "leave") < 2:
        reasons += "Too few active agents; "
    stale = 0
    for action in reversed([a for actions in steps for a in actions]):
        if action.get("action_type", "none") != "none" or stale > MAX_STALE:
            break
        stale += 1
    if stale > MAX_STALE:
        reasons += "The conversation stales for too long; "
    return reasons


# ------------------------------------------------------------------ prompts and schemas

def action_schema(names: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "required": ["action_type", "argument", "to"],
            "properties": {
                "action_type": {"type": "string", "enum": ["none", "speak",
                                                           "non-verbal communication",
                                                           "action", "leave"]},
                "argument": {"type": "string", "maxLength": 2_000},
                "to": {"type": "array", "maxItems": len(names),
                       "items": {"type": "string", "enum": names}}}}


def agent_prompt(scenario: dict[str, Any], agents: list[dict[str, Any]],
                 steps: list[list[dict[str, Any]]], me: int) -> list[dict[str, str]]:
    """The acting agent's request: who it is, what it knows, the conversation it has seen."""
    names = [name_of(a) for a in agents]
    history = [background(scenario, agents, me)]
    history += [observation(k, names, actions, me) for k, actions in enumerate(steps)]
    others = ", ".join(n for i, n in enumerate(names) if i != me)
    system = (
        f"Imagine you are {names[me]}. Act and speak as {names[me]} would, keeping "
        f"{names[me]}'s social goal in mind. The context and the conversation so far are "
        "below.\n"
        f"You are at Turn #{len(steps)}. Your available action types are none, speak, "
        "non-verbal communication, action, leave.\n"
        'Choose "leave" when you have achieved your social goal, when the conversation makes '
        "you uncomfortable or bores you, or for any other reason you would really leave.\n"
        'Answer with one JSON object: {"action_type": one of the types, "argument": what you '
        'say or do (empty for none and leave), "to": [] to address everyone, or the names '
        f"of those you address privately, among {others}}}.")
    return [{"role": "system", "content": system},
            {"role": "user", "content": "".join(history)}]


def evaluation_schema(dimensions: list[dict[str, Any]], n_agents: int) -> dict[str, Any]:
    one = {"type": "object", "additionalProperties": False,
           "required": [d["name"] for d in dimensions],
           "properties": {d["name"]: {
               "type": "object", "additionalProperties": False,
               "required": ["reasoning", "score"],
               "properties": {"reasoning": {"type": "string", "maxLength": 4_000},
                              "score": {"type": "integer", "minimum": d["range_low"],
                                        "maximum": d["range_high"]}}}
               for d in dimensions}}
    keys = [f"agent_{i + 1}" for i in range(n_agents)]
    return {"type": "object", "additionalProperties": False, "required": ["evaluations"],
            "properties": {"evaluations": {
                "type": "object", "additionalProperties": False, "required": keys,
                "properties": {k: one for k in keys}}}}


def evaluation_prompt(scenario: dict[str, Any], agents: list[dict[str, Any]],
                      steps: list[list[dict[str, Any]]], dimensions: list[dict[str, Any]]
                      ) -> list[dict[str, str]]:
    names = [name_of(a) for a in agents]
    history = [background(scenario, agents, None)]
    for k, actions in enumerate(steps):
        said = [f"{names[i]} {action_text(a)}" for i, a in enumerate(actions)
                if a.get("action_type", "none") != "none"]
        history.append(f"Turn #{k}: {';'.join(said)}\n")
    rubric = "\n".join(f"- {d['name']} (an integer from {d['range_low']} to "
                       f"{d['range_high']}): {d.get('description', '')}" for d in dimensions)
    who = "\n".join(f"agent_{i + 1} is {n}" for i, n in enumerate(names))
    system = (
        "You judge a social interaction. Read the context and the whole conversation, then "
        "evaluate how well each participant achieved its goal and behaved, on every "
        f"dimension below.\nThere are exactly {len(names)} agents:\n{who}\n"
        f"Dimensions:\n{rubric}\n"
        'Answer with one JSON object: {"evaluations": {"agent_1": {<dimension>: {"reasoning": '
        '<why>, "score": <integer in range>}, ...}, "agent_2": {...}}}.')
    return [{"role": "system", "content": system},
            {"role": "user", "content": "".join(history)}]


def aggregate(evaluations: dict[str, Any], dimensions: list[dict[str, Any]],
              names: list[str], reasons: str) -> tuple[list[Any], str]:
    """Sotopia's rewards (overall, {dimension: score, "overall_score": overall}) per agent,
    overall the unweighted mean, and its comments as the episode's reasoning."""
    rewards: list[Any] = []
    comments = [f"Environment comments: terminated: {reasons}"]
    for i, name in enumerate(names):
        scored = evaluations[f"agent_{i + 1}"]
        dims = {d["name"]: float(scored[d["name"]]["score"]) for d in dimensions}
        overall = sum(dims.values()) / len(dims) if dims else 0.0
        rewards.append([overall, {**dims, "overall_score": overall}])
        comments.append(f"Agent {i + 1} comments:")
        comments += [f"{d['name']}: {scored[d['name']]['reasoning']}" for d in dimensions]
    return rewards, "\n".join(comments) + "\n"
