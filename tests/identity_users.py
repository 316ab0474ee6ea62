"""A Jupyter Server IdentityProvider for tests: token authentication with two users.

``Authorization: token alice-token`` (or ``?token=alice-token``) is alice, ``bob-token``
is bob; anything else is not logged in. Only the token lookup is replaced: the rest
(cookies, XSRF exemption of token-authenticated requests) is jupyter_server's own.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User

TOKENS = {"alice-token": "alice", "bob-token": "bob"}


class TwoUsers(IdentityProvider):
    @property
    def auth_enabled(self) -> bool:
        return True

    async def get_user_token(self, handler: Any) -> User | None:
        name = TOKENS.get(self.get_token(handler) or "")
        return User(username=name, name=name.title()) if name else None
