"""actorlog's actor runtime: events, stores, hosts, placement and the client."""
