"""Who may do more than a visitor: the codes a server's owner sets in environment variables
($CNN_EXPLORER_OWNER_CODE for the job queue's limits, $CNN_EXPLORER_TEACHER_CODE for the class
challenge), and the one way a typed code is compared with them.

Owns: `code_matches`. A code that is not set never matches (an empty variable locks the door
rather than opening it); the comparison takes constant time (hmac.compare_digest), so the time
it takes says nothing about how much of a guess was right. Never imports from the project.
"""

from __future__ import annotations

import hmac
import os


def code_matches(env_var: str, code: object) -> bool:
    """True when `code` (what a visitor typed) equals the non-empty value of `env_var`."""
    expected = os.environ.get(env_var, "")
    if not expected or not isinstance(code, str) or not code:
        return False
    return hmac.compare_digest(code.encode(), expected.encode())


__all__ = ["code_matches"]
