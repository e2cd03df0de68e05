"""The agent chat family's domain: a smolagents ToolCallingAgent driven through the model port
(model.py), its tools (tools.py), and its memory as events (memory.py), so a chat's memory is
rebuilt from its log rather than pickled."""
