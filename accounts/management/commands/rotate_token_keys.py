from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.crypto import rotate
from accounts.models import MailboxConnection


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored OAuth grant under the first key of TOKEN_ENCRYPTION_KEYS. "
        "Put the new key first, run this, then remove the old key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = 0
        ids = MailboxConnection.objects.exclude(grant_ciphertext="").values_list("pk", flat=True)
        for pk in ids.iterator():
            with transaction.atomic():
                connection = MailboxConnection.objects.select_for_update().get(pk=pk)
                if connection.grant_ciphertext:
                    connection.grant_ciphertext = rotate(connection.grant_ciphertext)
                    connection.save(update_fields=["grant_ciphertext"])
                    rotated += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {rotated} grant(s) under the newest key."))
