"""What can be revoked or changed, as announced on ``gateway:auth`` to every process.

The values are the ``kind`` strings of the channel's messages (``{"kind", "id"}``), so
processes of different versions understand each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any


class Revocation(StrEnum):
    SESSION = "session"  # id: session UUID (logout, refresh-token reuse)
    USER = "user"  # id: user_id, disabled or deleted: their sockets close
    USER_ROLE = "user_role"  # id: user_id, possibly demoted: sockets close and reconnect
    USER_CHANGED = "user_changed"  # id: user_id, anything else: only caches are dropped
    API_KEY = "api_key"  # id: key_id, deactivated or deleted
    OWNERSHIP = "ownership"  # id: user_id, whose accounts or bots changed hands

    def parse_id(self, raw: str) -> Any:
        """The id as this process keys it (ValueError when malformed)."""
        return uuid.UUID(raw) if self is Revocation.SESSION else int(raw)


USER_KINDS = frozenset({Revocation.USER, Revocation.USER_ROLE, Revocation.USER_CHANGED})
RevocationListener = Callable[[Revocation, Any], None]
