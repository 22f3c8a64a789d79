"""Time units: the simulation keeps integer nanoseconds; inputs come in seconds or milliseconds.

One conversion, and it rounds: ``int(x * 1e9)`` truncates, so 4.1 s became 4,099,999,999 ns in one place and
4,100,000,000 ns in another, and a window edge could miss the event it was meant to include.
"""

from __future__ import annotations

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


def s_to_ns(seconds: float) -> int:
    """Seconds → integer nanoseconds, rounded to the nearest."""
    return round(seconds * NS_PER_S)


def ms_to_ns(ms: float) -> int:
    """Milliseconds → integer nanoseconds, rounded to the nearest."""
    return round(ms * NS_PER_MS)
