"""Signals other apps listen to. accounts imports no sync app; the sync apps connect here."""

from django.dispatch import Signal

# Sent after commit when a connection should sync now ("Sync now", a new connection).
# Keyword argument: connection_id.
sync_requested = Signal()
