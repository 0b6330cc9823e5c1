"""What mail leaves on disk, cleaned up: the attachments of sent mail (the provider has the
message now; the Outbox keeps each attachment's name and size), and capture's spool folders that a
worker killed mid-run left behind. Beat runs this hourly (``aspire_sync.tasks.prune_records``), and
a message's attachments go as soon as it is marked sent."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

from .models import OutboundAttachment, OutboundEmail


def release_sent_attachments(*, outbound_ids: Iterable[object] | None = None) -> int:
    """Delete the stored files of sent messages' attachments (of these messages, or of all sent
    ones). The rows stay, without their file. Returns how many files were deleted."""
    stored = OutboundAttachment.objects.filter(outbound__state=OutboundEmail.State.SENT).exclude(file="")
    if outbound_ids is not None:
        stored = stored.filter(outbound_id__in=list(outbound_ids))
    released = 0
    for attachment in stored.iterator():
        # The row first: should deleting the file fail, the next sweep finds nothing to redo, and
        # a file left over is only disk, never a message that cannot be shown.
        name = attachment.file.name
        if name and OutboundAttachment.objects.filter(pk=attachment.pk).exclude(file="").update(file=""):
            attachment.file.storage.delete(name)
            released += 1
    return released


def clean_spool(*, now: float | None = None) -> int:
    """Remove what capture left in the spool folder longer ago than MAIL_SPOOL_MAX_AGE_SECONDS
    (a run's own folder goes when the run ends; one killed mid-run leaves it). Returns how many
    entries were removed."""
    root = Path(settings.MAIL_SPOOL_DIR)
    if not root.is_dir():
        return 0
    cutoff = (now or time.time()) - int(settings.MAIL_SPOOL_MAX_AGE_SECONDS)
    removed = 0
    for entry in root.iterdir():
        try:
            if entry.lstat().st_mtime >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue  # removed meanwhile
        removed += 1
    return removed
