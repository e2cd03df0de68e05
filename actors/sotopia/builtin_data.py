"""The built-in set a fresh server starts with, written for this project: six characters,
five scenarios, the relationships between them, and the SOTOPIA-Eval dimension list
("sotopia", the seven dimensions and ranges of Sotopia's paper, described in our words).

Records carry fixed pks so every replica seeds the same ones; seeding writes a record only if
its id never existed, so a deleted built-in stays deleted.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AGENTS", "DIMENSIONS", "DIMENSION_LIST", "RELATIONSHIPS", "SCENARIOS",
           "SOTOPIA_DIMENSIONS"]

AGENTS: list[dict[str, Any]] = [
    {"pk": "builtin-agent-mara-okafor", "first_name": "Mara", "last_name": "Okafor", "age": 34,
     "occupation": "Ferry Engineer", "gender": "Woman", "gender_pronoun": "She/her",
     "public_info": "Mara keeps the island ferry running and knows every bolt of it.",
     "big_five": "High conscientiousness; moderate extraversion",
     "moral_values": ["Care"], "schwartz_personal_values": ["Security"],
     "personality_and_values": "Practical and direct; values reliability over charm.",
     "decision_making_style": "Analytical", "secret": "She failed her first licence exam.",
     "mbti": "ISTJ", "tag": "builtin"},
    {"pk": "builtin-agent-tomas-lind", "first_name": "Tomas", "last_name": "Lind", "age": 41,
     "occupation": "Bakery Owner", "gender": "Man", "gender_pronoun": "He/him",
     "public_info": "Tomas runs the corner bakery and sponsors the youth choir.",
     "big_five": "High agreeableness; high extraversion",
     "moral_values": ["Fairness"], "schwartz_personal_values": ["Benevolence"],
     "personality_and_values": "Warm and talkative; hates conflict, loves a good deal.",
     "decision_making_style": "Intuitive", "secret": "His bakery is two months behind on rent.",
     "mbti": "ESFJ", "tag": "builtin"},
    {"pk": "builtin-agent-ines-halloran", "first_name": "Ines", "last_name": "Halloran",
     "age": 27, "occupation": "Graduate Student", "gender": "Woman",
     "gender_pronoun": "She/her",
     "public_info": "Ines studies marine biology and volunteers at the aquarium.",
     "big_five": "High openness; low neuroticism",
     "moral_values": ["Liberty"], "schwartz_personal_values": ["Self-direction"],
     "personality_and_values": "Curious, idealistic, quick to argue a point.",
     "decision_making_style": "Spontaneous",
     "secret": "She is thinking of quitting her programme.", "mbti": "ENFP", "tag": "builtin"},
    {"pk": "builtin-agent-kofi-mensah", "first_name": "Kofi", "last_name": "Mensah", "age": 52,
     "occupation": "School Principal", "gender": "Man", "gender_pronoun": "He/him",
     "public_info": "Kofi has led the town's secondary school for a decade.",
     "big_five": "High conscientiousness; high agreeableness",
     "moral_values": ["Authority"], "schwartz_personal_values": ["Tradition"],
     "personality_and_values": "Patient and principled; listens before he speaks.",
     "decision_making_style": "Deliberative",
     "secret": "He has already accepted a job in another city.", "mbti": "INFJ",
     "tag": "builtin"},
    {"pk": "builtin-agent-rui-tanaka", "first_name": "Rui", "last_name": "Tanaka", "age": 30,
     "occupation": "Freelance Designer", "gender": "Nonbinary", "gender_pronoun": "They/them",
     "public_info": "Rui designs posters and shop signs for half the high street.",
     "big_five": "High openness; moderate conscientiousness",
     "moral_values": ["Loyalty"], "schwartz_personal_values": ["Stimulation"],
     "personality_and_values": "Playful and persuasive; bored by routine.",
     "decision_making_style": "Intuitive", "secret": "They reused a client's logo idea.",
     "mbti": "ENTP", "tag": "builtin"},
    {"pk": "builtin-agent-agnes-varga", "first_name": "Agnes", "last_name": "Varga", "age": 66,
     "occupation": "Retired Judge", "gender": "Woman", "gender_pronoun": "She/her",
     "public_info": "Agnes chairs the neighbourhood association.",
     "big_five": "High conscientiousness; low agreeableness",
     "moral_values": ["Fairness"], "schwartz_personal_values": ["Universalism"],
     "personality_and_values": "Exacting and fair; suspicious of shortcuts.",
     "decision_making_style": "Analytical",
     "secret": "She quietly pays a neighbour's heating bill.", "mbti": "INTJ",
     "tag": "builtin"},
]

SCENARIOS: list[dict[str, Any]] = [
    {"pk": "builtin-scenario-shared-van", "codename": "shared_van", "source": "actorlog",
     "scenario": "Two neighbours share a small delivery van. Both need it all day on Saturday.",
     "agent_goals": ["Get the van for Saturday <extra_info>You promised a customer a delivery "
                     "that cannot move.</extra_info>",
                     "Keep the van for Saturday <strategy_hint>You could offer something in "
                     "return.</strategy_hint>"],
     "relationship": 2, "tag": "negotiation builtin"},
    {"pk": "builtin-scenario-noisy-party", "codename": "noisy_party", "source": "actorlog",
     "scenario": "One person's weekly party keeps the other awake; they meet on the stairs.",
     "agent_goals": ["Get the parties to end by ten <extra_info>You start work at six."
                     "</extra_info>",
                     "Keep hosting the parties while staying on good terms"],
     "relationship": 1, "tag": "conflict neighbours builtin"},
    {"pk": "builtin-scenario-loan-request", "codename": "loan_request", "source": "actorlog",
     "scenario": "A friend asks the other for a loan to keep a small business afloat.",
     "agent_goals": ["Borrow 2,000 without straining the friendship",
                     "Help your friend without risking money you need <extra_info>You are "
                     "saving for a house deposit.</extra_info>"],
     "relationship": 3, "tag": "negotiation money friends builtin"},
    {"pk": "builtin-scenario-group-project", "codename": "group_project",
     "source": "actorlog",
     "scenario": "Two colleagues must decide who presents their joint project to the board.",
     "agent_goals": ["Present the project yourself <clarification_hint>You did most of the "
                     "analysis.</clarification_hint>",
                     "Make sure the credit is shared fairly"],
     "relationship": 2, "tag": "cooperation work builtin"},
    {"pk": "builtin-scenario-lost-wallet", "codename": "lost_wallet", "source": "actorlog",
     "scenario": "A stranger found a wallet on the bus and the owner tracks them down.",
     "agent_goals": ["Get your wallet back with everything in it",
                     "Return the wallet and be thanked properly"],
     "relationship": 0, "tag": "strangers cooperation builtin"},
]

RELATIONSHIPS: list[dict[str, Any]] = [
    {"pk": "builtin-rel-mara-tomas", "agent_1_id": "builtin-agent-mara-okafor",
     "agent_2_id": "builtin-agent-tomas-lind", "relationship": 2,
     "background_story": "They share a van and a parking space.", "tag": "builtin"},
    {"pk": "builtin-rel-ines-rui", "agent_1_id": "builtin-agent-ines-halloran",
     "agent_2_id": "builtin-agent-rui-tanaka", "relationship": 3,
     "background_story": "Old flatmates.", "tag": "builtin"},
    {"pk": "builtin-rel-kofi-agnes", "agent_1_id": "builtin-agent-kofi-mensah",
     "agent_2_id": "builtin-agent-agnes-varga", "relationship": 1,
     "background_story": "They sit on the same committee.", "tag": "builtin"},
]

#: SOTOPIA-Eval: seven dimensions with Sotopia's names and ranges
SOTOPIA_DIMENSIONS: list[dict[str, Any]] = [
    {"name": "believability", "range_low": 0, "range_high": 10,
     "description": "Does the agent act like the character it plays, consistently and "
                    "naturally?"},
    {"name": "relationship", "range_low": -5, "range_high": 5,
     "description": "Did the relationship between the participants get better (positive) or "
                    "worse (negative) through the interaction?"},
    {"name": "knowledge", "range_low": 0, "range_high": 10,
     "description": "Did the agent learn new, relevant and important things?"},
    {"name": "secret", "range_low": -10, "range_high": 0,
     "description": "Did the agent keep its secrets and private intentions? 0 if it kept "
                    "them, lower the more it gave away."},
    {"name": "social_rules", "range_low": -10, "range_high": 0,
     "description": "Did the agent break social norms or laws? 0 if not, lower the more "
                    "serious the breach."},
    {"name": "financial_and_material_benefits", "range_low": -5, "range_high": 5,
     "description": "Did the agent gain (positive) or lose (negative) money, goods or other "
                    "material benefits?"},
    {"name": "goal", "range_low": 0, "range_high": 10,
     "description": "How far did the agent get towards its social goal? 10 when fully "
                    "achieved."},
]

DIMENSIONS: list[dict[str, Any]] = [{"pk": f"builtin-dimension-{d['name']}", **d}
                                    for d in SOTOPIA_DIMENSIONS]
DIMENSION_LIST: dict[str, Any] = {"pk": "builtin-dimension-list-sotopia", "name": "sotopia",
                                  "dimension_pks": [d["pk"] for d in DIMENSIONS]}
