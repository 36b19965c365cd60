"""Keep the garbage collector's full collections from stopping a worker's event loop for 100+ ms.

Why: a full (generation-2) collection walks every tracked object. A worker holds a few hundred thousand
(Faust and its dependencies, River's HalfSpaceTrees nodes, the policy), almost none of which ever become
garbage, and each full collection stopped the event loop for 100-230 ms (measured with gc callbacks at
1,000 msg/s; see docs/performance.md): that was the p99 of event -> decision.
"""

from __future__ import annotations

import gc

# Young collections every 10,000 allocations instead of 700, a full one after 100 of them instead of 10:
# per-event dicts die young by reference counting anyway; what a collection costs is the number of
# objects it walks, not how much garbage it finds.
GC_THRESHOLDS = (10_000, 10, 100)


def freeze_long_lived_objects() -> None:
    """Move everything alive now out of the collector's sight, and collect less often from now on.

    Frozen objects are still freed by reference counting; only reference cycles among them would never be
    collected, so this is called when what is alive is what the process keeps: at start, and after the
    models are restored from their checkpoint.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
