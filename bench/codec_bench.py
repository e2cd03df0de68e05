"""Why orjson is the event codec: encode and decode of a typical chat event, against msgpack."""

from __future__ import annotations

import time

import msgpack
import orjson

from bench.common import report

EVENT = {"role": "assistant", "content": "The quick brown fox jumps over the lazy dog. " * 4,
         "id": "run-3f2a9c", "tool_calls": [], "usage": {"in": 52, "out": 48}, "n": 7}


def _rate(fn, n: int = 200_000) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def run(quick: bool = False) -> None:
    oj, mp = orjson.dumps(EVENT), msgpack.packb(EVENT)
    enc_o, enc_m = _rate(lambda: orjson.dumps(EVENT)), _rate(lambda: msgpack.packb(EVENT))
    dec_o, dec_m = _rate(lambda: orjson.loads(oj)), _rate(lambda: msgpack.unpackb(mp))
    report("codec encode, orjson (chosen)", enc_o, "ops/s", enc_m, "msgpack")
    report("codec decode, orjson (chosen)", dec_o, "ops/s", dec_m, "msgpack")
    print(f"{'':48} sizes: orjson {len(oj)} B, msgpack {len(mp)} B", flush=True)
