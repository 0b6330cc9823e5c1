from django.db import migrations


def move_push_channels(apps, schema_editor):
    """Calendars' Graph subscriptions and Google channels move to accounts.PushChannel. None of the
    Graph ones was made with lifecycle notifications, so the next run replaces each."""
    PushChannel = apps.get_model("accounts", "PushChannel")
    CalendarSyncState = apps.get_model("calendarsync", "CalendarSyncState")
    PushChannel.objects.bulk_create([
        PushChannel(connection_id=state.connection_id, purpose="calendar", channel_id=state.watch_id,
                    resource_id=state.watch_resource_id, secret=state.watch_secret,
                    expires_at=state.watch_expires_at)
        for state in CalendarSyncState.objects.exclude(watch_id="")
    ], ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_push_channel'),
        ('calendarsync', '0002_push_watch'),
    ]

    operations = [
        migrations.RunPython(move_push_channels, migrations.RunPython.noop),
        migrations.RemoveField(model_name='calendarsyncstate', name='watch_expires_at'),
        migrations.RemoveField(model_name='calendarsyncstate', name='watch_id'),
        migrations.RemoveField(model_name='calendarsyncstate', name='watch_resource_id'),
        migrations.RemoveField(model_name='calendarsyncstate', name='watch_secret'),
        migrations.RemoveField(model_name='calendarsyncstate', name='watch_tried_at'),
    ]
