"""The Sotopia family's entities: records (profiles.py), episodes (episode.py), and the rules
of a social episode (social.py)."""
