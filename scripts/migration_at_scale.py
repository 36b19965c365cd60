"""``riskmon state migrate`` (layout 1 -> 2) at production scale, on its own redis-server, timed and checked.

Why a script: the integration test migrates 1.2k small states; an operator planning the upgrade of a
Redis with hundreds of thousands of users needs the time it takes with real, mature states, and the
proof that every key survives (version, blob, remaining TTL). This builds mature states by running the
engine over the bench's input (``riskmon.offline.run_offline``, a single worker's loop), writes
``--keys`` layout-1 hashes cycling their blobs, migrates them with a progress bar, then checks every key
and that a rerun converts nothing::

    .venv/bin/python scripts/migration_at_scale.py                 # 200k keys (~1.2 GB of Redis)
    .venv/bin/python scripts/migration_at_scale.py --keys 50000

Everything it starts is stopped at the end, also on an error.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import redis
from rich.progress import Progress

from riskmon.bench import dataset
from riskmon.config import Settings
from riskmon.engine import Engine
from riskmon.offline import run_offline
from riskmon.policy import load_policy
from riskmon.services import procs
from riskmon.services.redis import start_redis
from riskmon.state.accounts import split_stored
from riskmon.state.layout import ACCOUNT_PREFIX, LAYOUT_KEY, migrate

TTL_S = 30 * 86_400


def mature_blobs(events: int, users: int) -> list[bytes]:
    """State blobs of the accounts the engine holds after ``events`` input messages of the bench's data."""
    settings = Settings()
    engine = Engine.for_settings(settings, load_policy(settings.policy_path))
    run = run_offline(((line.topic, line.value) for line in dataset.build_lines(events, users, 200, 7)), engine)
    return [st.to_bytes() for st in run.states.values() if not st.is_new]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=200_000, help="layout-1 account hashes to migrate (default 200000)")
    ap.add_argument("--events", type=int, default=300_000,
                    help="input messages the engine runs to age the states (default 300000: ~5.5 KB each)")
    ap.add_argument("--batch", type=int, default=500, help="keys per migration script call (default 500)")
    args = ap.parse_args()

    t = time.perf_counter()
    blobs = mature_blobs(args.events, 20_000)
    print(f"{len(blobs)} mature states, mean {sum(map(len, blobs)) / len(blobs):,.0f} bytes "
          f"({time.perf_counter() - t:.0f} s)")
    srv = start_redis(Path(tempfile.mkdtemp(prefix="riskmon-migrate-")))
    try:
        r = redis.Redis.from_url(srv.url)
        pipe = r.pipeline(transaction=False)
        for i in range(args.keys):  # what a layout-1 worker's commit wrote: HSET v, s and EXPIRE
            key = f"{ACCOUNT_PREFIX}u{i}"
            pipe.hset(key, mapping={"v": 3 + i % 5, "s": blobs[i % len(blobs)]})
            pipe.expire(key, TTL_S)
            if i % 2000 == 1999:
                pipe.execute()
        pipe.execute()
        print(f"{args.keys:,} layout-1 hashes written; Redis {r.info('memory')['used_memory'] / 2**20:,.0f} MiB")
        with Progress() as bar:
            task = bar.add_task("migrate", total=args.keys)
            t = time.perf_counter()
            done = migrate(r, batch=args.batch, progress=lambda n: bar.advance(task, n))
            took = time.perf_counter() - t
        print(f"migrated {done:,} keys in {took:.2f} s: {done / took:,.0f} keys/s")
        wrong = 0
        for i in range(args.keys):
            key = f"{ACCOUNT_PREFIX}u{i}"
            version, blob = split_stored(r.get(key))
            if version != 3 + i % 5 or blob != blobs[i % len(blobs)] or not TTL_S - 3600 < r.ttl(key) <= TTL_S:
                wrong += 1
        again = migrate(r, batch=args.batch)
        print(f"keys wrong after migration: {wrong}; layout marker {r.get(LAYOUT_KEY).decode()}; a rerun converted {again}")
        if wrong or again:
            raise SystemExit(1)
    finally:
        procs.stop(srv.proc)


if __name__ == "__main__":
    main()
