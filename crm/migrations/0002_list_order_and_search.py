"""Lists sorted by name read from an index (the id last, for stable pages), and trigram indexes for
text search on PostgreSQL (accounts.search)."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

from accounts.migration_operations import trigram_index

SEARCHED = {
    "crm_contact": ("first_name", "last_name", "company_name", "phone"),
    "crm_contactemail": ("address",),
    "crm_property": ("name", "street", "city", "state", "postal_code"),
    "crm_opportunity": ("name",),
    "crm_workticket": ("description",),
}


class Migration(migrations.Migration):

    dependencies = [
        ("crm", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="contact",
            name="crm_contact_company_8da3c0_idx",
        ),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(fields=["company", "last_name", "first_name", "id"], name="contact_company_name"),
        ),
        migrations.AddIndex(
            model_name="opportunity",
            index=models.Index(fields=["company", "name", "id"], name="opportunity_company_name"),
        ),
        migrations.AddIndex(
            model_name="property",
            index=models.Index(fields=["company", "name", "id"], name="property_company_name"),
        ),
        # Skipped on SQLite, like the indexes below.
        TrigramExtension(),
        *(trigram_index(table, column) for table, columns in SEARCHED.items() for column in columns),
    ]
