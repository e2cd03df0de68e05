"""OpenGPTs' domain beyond the two entities: bots (what a run does), tools, documents."""
