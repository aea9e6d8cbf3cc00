"""The garbage collector of a long-running process (``evpki serve``, the OCPP bridge, benchmarks).

A full (generation 2) collection walks every tracked object: once the modules, the ORM mappings,
the web framework and the PKI's caches are loaded that is well over 100,000 objects, and the pause
(tens of milliseconds on one core) lands inside whichever request happens to allocate at that
moment — the p99 of contract provisioning. :func:`settle`, called once start-up is done, moves
everything alive then into the permanent generation (:func:`gc.freeze`), so later collections walk
only what was allocated since; what was frozen is never freed, which is what start-up state is for.
"""

from __future__ import annotations

import gc

__all__ = ["settle"]


def settle() -> None:
    """Collect what start-up left behind, then exempt the survivors from later collections."""
    gc.collect()
    gc.freeze()
