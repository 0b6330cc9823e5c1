from django.db import migrations


def move_push_channels(apps, schema_editor):
    """Mail's Graph subscriptions and Gmail watches move to accounts.PushChannel. None of them was
    made with lifecycle notifications, so the next run replaces each Graph one."""
    PushChannel = apps.get_model("accounts", "PushChannel")
    MailSyncState = apps.get_model("mailsync", "MailSyncState")
    PushChannel.objects.bulk_create([
        PushChannel(connection_id=state.connection_id, purpose="mail", watched=state.aspire_folder_id,
                    channel_id=state.push_id, secret=state.push_secret, expires_at=state.push_expires_at)
        for state in MailSyncState.objects.exclude(push_id="")
    ], ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_push_channel'),
        ('mailsync', '0003_send_queue'),
    ]

    operations = [
        migrations.RunPython(move_push_channels, migrations.RunPython.noop),
        migrations.RemoveField(model_name='mailsyncstate', name='push_expires_at'),
        migrations.RemoveField(model_name='mailsyncstate', name='push_id'),
        migrations.RemoveField(model_name='mailsyncstate', name='push_secret'),
    ]
