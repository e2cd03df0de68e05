"""actorlog's actor runtime: events, stores, hosts, placement and the client."""

from runtime.settings import set_default

# Hosts run with the C library's allocator, not CPython's arenas: a host that ran 10,000
# episodes kept 1 MiB arenas pinned by a few live objects each (199 MB against 111 MB after
# 1,000, every object freed and the heap trimmed), while freed malloc pages go back to the
# system. The variable is read when an interpreter starts, so it is set here, before this
# process starts a local Ray whose workers inherit it; a cluster's nodes set it in
# cluster.yaml. An operator's own PYTHONMALLOC wins.
set_default("PYTHONMALLOC", "malloc")
