"""Create the demo users of the embedded mode (idempotent)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from config.env import env_str

DEMO_USERS = [
    # (name, Django superuser): hadoop is the default Linkis admin.
    ("hadoop", True),
    ("alice", False),
    ("bob", False),
]


class Command(BaseCommand):
    help = "Create the demo users hadoop (admin), alice and bob with the DEMO_PASSWORD password."

    def handle(self, *args: Any, **options: Any) -> None:
        password = env_str("DEMO_PASSWORD", settings.DEMO_PASSWORD_DEFAULT)
        user_model = get_user_model()
        for name, is_admin in DEMO_USERS:
            user, created = user_model.objects.get_or_create(username=name)
            user.is_staff = is_admin
            user.is_superuser = is_admin
            if created or not user.has_usable_password():
                user.set_password(password)
            user.save()
            self.stdout.write(f"{'created' if created else 'kept'} user {name}{' (admin)' if is_admin else ''}")
