"""Find email at a million emails: the company in the word index, and the activity's time on the email.

- ``btree_gin`` lets one GIN index hold the company beside the words, so a word's matches are the
  searcher's company's alone, straight from the index.
- ``EmailMessage.occurred_at`` is the activity's time, kept by two triggers: set from the activity
  whenever an email row is written (by the ORM, a bulk insert or a full ``save()`` alike), and
  copied to the email whenever the activity's time changes. With an index on (company, time), a
  search walks one table newest first, and for a word in a few percent of emails PostgreSQL
  intersects the word's GIN matches with a date range's (a BitmapAnd) before reading any row.

Reference: https://www.postgresql.org/docs/current/btree-gin.html
Reference: https://www.postgresql.org/docs/current/indexes-bitmap-scans.html
Reference: https://www.postgresql.org/docs/current/plpgsql-trigger.html
"""

from django.contrib.postgres.operations import BtreeGinExtension
from django.db import migrations, models

from accounts.migration_operations import RunSQLOnPostgreSQL

# The old index goes first, so the fill below does not update it row by row; the new ones are
# built once, after it.
FORWARD = r"""
DROP INDEX IF EXISTS "emailmessage_search_gin";
UPDATE "activities_emailmessage" AS e SET "occurred_at" = a."occurred_at"
FROM "activities_activity" AS a WHERE a."id" = e."activity_id";

CREATE FUNCTION "activities_emailmessage_occurred_at"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT a."occurred_at" INTO NEW."occurred_at" FROM "activities_activity" AS a WHERE a."id" = NEW."activity_id";
    RETURN NEW;
END $$;
CREATE TRIGGER "emailmessage_occurred_at" BEFORE INSERT OR UPDATE OF "occurred_at", "activity_id"
    ON "activities_emailmessage" FOR EACH ROW EXECUTE FUNCTION "activities_emailmessage_occurred_at"();

CREATE FUNCTION "activities_activity_occurred_at_to_email"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE "activities_emailmessage" SET "occurred_at" = NEW."occurred_at" WHERE "activity_id" = NEW."id";
    RETURN NULL;
END $$;
CREATE TRIGGER "activity_occurred_at_to_email" AFTER UPDATE OF "occurred_at" ON "activities_activity"
    FOR EACH ROW WHEN (OLD."occurred_at" IS DISTINCT FROM NEW."occurred_at")
    EXECUTE FUNCTION "activities_activity_occurred_at_to_email"();

CREATE INDEX "emailmessage_search_gin" ON "activities_emailmessage" USING gin ("company_id", "search_vector");
CREATE INDEX "emailmessage_company_recent" ON "activities_emailmessage"
    ("company_id", "occurred_at" DESC, "activity_id" DESC);
"""

BACKWARD = r"""
DROP INDEX IF EXISTS "emailmessage_company_recent";
DROP INDEX IF EXISTS "emailmessage_search_gin";
DROP TRIGGER IF EXISTS "activity_occurred_at_to_email" ON "activities_activity";
DROP FUNCTION IF EXISTS "activities_activity_occurred_at_to_email"();
DROP TRIGGER IF EXISTS "emailmessage_occurred_at" ON "activities_emailmessage";
DROP FUNCTION IF EXISTS "activities_emailmessage_occurred_at"();
CREATE INDEX "emailmessage_search_gin" ON "activities_emailmessage" USING gin ("search_vector");
"""


class Migration(migrations.Migration):

    dependencies = [
        ("activities", "0008_email_search"),
    ]

    operations = [
        BtreeGinExtension(),
        migrations.AddField(
            model_name="emailmessage",
            name="occurred_at",
            field=models.DateTimeField(editable=False, null=True),
        ),
        RunSQLOnPostgreSQL(sql=FORWARD, reverse_sql=BACKWARD),
    ]
