import django.db.models.deletion
import uuid
from django.db import migrations, models


def forget_old_renewal_task(apps, schema_editor):
    # Push channels are renewed by the sync runs now; beat's database kept the old hourly entry.
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="mailsync.renew_push").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_syncrun'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.CreateModel(
            name='PushChannel',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('purpose', models.CharField(choices=[('mail', 'Aspire folder'), ('calendar', 'Calendar')], max_length=16)),
                ('watched', models.CharField(blank=True, max_length=500)),
                ('channel_id', models.CharField(blank=True, db_index=True, max_length=300)),
                ('resource_id', models.CharField(blank=True, max_length=300)),
                ('secret', models.CharField(blank=True, editable=False, max_length=100)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('lifecycle', models.BooleanField(default=False)),
                ('failed_at', models.DateTimeField(blank=True, null=True)),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='push_channels', to='accounts.mailboxconnection')),
            ],
            options={
                'constraints': [models.UniqueConstraint(models.F('connection'), models.F('purpose'), name='one_push_channel_per_purpose')],
            },
        ),
        migrations.RunPython(forget_old_renewal_task, migrations.RunPython.noop),
    ]
