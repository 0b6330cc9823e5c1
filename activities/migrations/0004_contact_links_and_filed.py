"""Contact links become a model of their own (the same table), carrying the activity's time, and an
activity knows whether it is filed on a contact: the indexes for a contact's timeline and for the
Unmatched list."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Exists, OuterRef, Subquery


def fill(apps, schema_editor):
    Activity = apps.get_model("activities", "Activity")
    ActivityContact = apps.get_model("activities", "ActivityContact")
    ActivityContact.objects.update(
        occurred_at=Subquery(Activity.objects.filter(pk=OuterRef("activity_id")).order_by().values("occurred_at")[:1])
    )
    Activity.objects.filter(Exists(ActivityContact.objects.filter(activity_id=OuterRef("pk")))).update(filed=True)


class Migration(migrations.Migration):

    dependencies = [
        ("activities", "0003_longer_dedupe_key"),
        ("crm", "0001_initial"),
    ]

    operations = [
        # The link table stays as it is; only Django's idea of it changes.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ActivityContact",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("activity", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="contact_links", to="activities.activity")),
                        ("contact", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="activity_links", to="crm.contact")),
                    ],
                    options={
                        "db_table": "activities_activity_contacts",
                        "unique_together": {("activity", "contact")},
                    },
                ),
                migrations.AlterField(
                    model_name="activity",
                    name="contacts",
                    field=models.ManyToManyField(blank=True, related_name="activities", through="activities.ActivityContact", to="crm.contact"),
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="activitycontact",
            name="occurred_at",
            field=models.DateTimeField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="activity",
            name="filed",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="activitycontact",
            index=models.Index(fields=["contact", "-occurred_at", "-activity"], name="activity_contact_timeline"),
        ),
        migrations.AddIndex(
            model_name="activity",
            index=models.Index(condition=models.Q(("filed", False), ("kind", "email"), ("origin", "captured")), fields=["company", "owner", "-occurred_at", "-id"], name="activity_unmatched"),
        ),
    ]
