"""Models of the manager app."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets

from django.db import models
from django.utils import timezone

__all__ = ["Token"]


class TokenQuerySet(models.QuerySet["Token"]):
    def for_code(self, code: str) -> Token | None:
        """The token whose secret is ``code``, or None."""
        return self.filter(key_hash=Token.hash_code(code)).first()


class Token(models.Model):
    """A Linkis access token: the ``Token-Code`` header, acting as the ``Token-User`` header's user.

    Only a hash of the code is stored; the code itself is shown once, when the token is made.
    """

    ANY = "*"

    name = models.CharField(max_length=128, unique=True, help_text="What the token is for, shown to staff.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the token code.")
    key_prefix = models.CharField(
        max_length=8, editable=False, help_text="First characters of the code, to tell tokens apart."
    )
    legal_users = models.TextField(
        default=ANY,
        help_text="Comma-separated user names the token may act as, or * for any user.",
    )
    legal_hosts = models.TextField(
        default=ANY,
        help_text="Comma-separated client addresses or networks (CIDR) allowed to use the token, or * for any.",
    )
    is_admin = models.BooleanField(
        default=False, help_text="Grants Linkis admin rights to requests made with the token."
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="After this time the token is refused; empty for never."
    )
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    objects = TokenQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash_code(code: str) -> str:
        """The stored form of a token code."""
        return hashlib.sha256(code.encode()).hexdigest()

    @staticmethod
    def generate_code() -> str:
        """A new random token code."""
        return secrets.token_urlsafe(32)

    def set_code(self, code: str) -> None:
        """Replace the token's code (not saved)."""
        self.key_hash = self.hash_code(code)
        self.key_prefix = code[:8]

    def _items(self, text: str) -> list[str]:
        return [item.strip() for item in text.split(",") if item.strip()]

    def is_expired(self, now=None) -> bool:
        """Whether the token has passed its expiry time."""
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def allows_user(self, user_name: str) -> bool:
        """Whether the token may act as ``user_name`` (user names are case-sensitive)."""
        users = self._items(self.legal_users)
        return self.ANY in users or user_name in users

    def allows_host(self, address: str | None) -> bool:
        """Whether a client at ``address`` may use the token."""
        hosts = self._items(self.legal_hosts)
        if self.ANY in hosts:
            return True
        if not address:
            return False
        try:
            client = ipaddress.ip_address(address)
        except ValueError:
            return False
        for host in hosts:
            try:
                if client in ipaddress.ip_network(host, strict=False):
                    return True
            except ValueError:
                continue
        return False
