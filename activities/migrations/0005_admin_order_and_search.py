"""The admin's order read from an index, and a trigram index for its search by subject (PostgreSQL)."""

from django.db import migrations, models

from accounts.migration_operations import trigram_index


class Migration(migrations.Migration):

    dependencies = [
        ("activities", "0004_contact_links_and_filed"),
        ("crm", "0002_list_order_and_search"),  # the pg_trgm extension
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="activity",
            name="activities__company_6eac3c_idx",
        ),
        migrations.AddIndex(
            model_name="activity",
            index=models.Index(fields=["company", "-occurred_at", "-id"], name="activity_company_recent"),
        ),
        trigram_index("activities_activity", "subject"),
    ]
