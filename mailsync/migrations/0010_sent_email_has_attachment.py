"""Mail sent from Aspire before ``EmailMessage.has_attachment`` existed: its files are kept with the
outbound message, not as attachment rows, so the flag is set from those."""

from django.db import migrations

from accounts.migration_operations import RunSQLOnPostgreSQL

FORWARD = r"""
UPDATE "activities_emailmessage" AS e SET "has_attachment" = true
FROM "mailsync_outboundemail" AS o
WHERE o."activity_id" = e."activity_id" AND NOT e."has_attachment"
  AND EXISTS (SELECT 1 FROM "mailsync_outboundattachment" AS t WHERE t."outbound_id" = o."id");
"""


class Migration(migrations.Migration):

    dependencies = [
        ("activities", "0010_emailmessage_has_attachment"),
        ("mailsync", "0009_outbound_html_body_and_thread_headers"),
    ]

    operations = [RunSQLOnPostgreSQL(sql=FORWARD, reverse_sql=migrations.RunSQL.noop)]
