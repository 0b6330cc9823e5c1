"""Find email's "Has an attachment" at a million emails: a flag on the email and an index of its own.

``EmailMessage.has_attachment`` is true when the email has an attachment that is not inline. A
trigger on the attachment rows keeps it, whatever writes them (capture's bulk insert, the ORM, a
delete), so the rule lives in the database; the fill below sets it for the emails there are. The
demo's SQLite has the same triggers in its dialect (a later migration that rebuilds the attachment
table there must make them again).
The partial index on (company, time, activity) WHERE has_attachment lets a search with the filter
walk the company's emails with attachments newest first, instead of reading a common word's GIN
matches for each date range and then every attachment row.

Reference: https://www.postgresql.org/docs/current/indexes-partial.html
Reference: https://www.postgresql.org/docs/current/plpgsql-trigger.html
"""

from django.db import migrations, models

from accounts.migration_operations import RunSQLOnPostgreSQL, RunSQLOnSQLite

# The word index is dropped for the fill and built again once after it, rather than updated row by
# row (each updated row gets a new version, and its words are indexed again).
FORWARD = r"""
DROP INDEX IF EXISTS "emailmessage_search_gin";
UPDATE "activities_emailmessage" AS e SET "has_attachment" = true
WHERE EXISTS (SELECT 1 FROM "activities_emailattachment" AS t WHERE t."email_id" = e."activity_id" AND NOT t."inline");
CREATE INDEX "emailmessage_search_gin" ON "activities_emailmessage" USING gin ("search_vector");

CREATE FUNCTION "activities_emailattachment_has_attachment"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    email uuid;
BEGIN
    FOR email IN SELECT DISTINCT x FROM unnest(ARRAY[
            CASE WHEN TG_OP <> 'INSERT' THEN OLD."email_id" END,
            CASE WHEN TG_OP <> 'DELETE' THEN NEW."email_id" END]) AS x WHERE x IS NOT NULL LOOP
        -- Written only when it changes: an email's second attachment costs no update of the email.
        UPDATE "activities_emailmessage" AS e SET "has_attachment" = NOT e."has_attachment"
        WHERE e."activity_id" = email AND e."has_attachment" IS DISTINCT FROM EXISTS (
            SELECT 1 FROM "activities_emailattachment" AS t WHERE t."email_id" = email AND NOT t."inline");
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER "emailattachment_has_attachment" AFTER INSERT OR DELETE OR UPDATE OF "inline", "email_id"
    ON "activities_emailattachment" FOR EACH ROW EXECUTE FUNCTION "activities_emailattachment_has_attachment"();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS "emailattachment_has_attachment" ON "activities_emailattachment";
DROP FUNCTION IF EXISTS "activities_emailattachment_has_attachment"();
"""

# The demo's SQLite keeps the same rule with its own triggers (no trigger functions there).
_SQLITE_SET = """UPDATE "activities_emailmessage" SET "has_attachment" = EXISTS (
        SELECT 1 FROM "activities_emailattachment" AS t WHERE t."email_id" = {row}."email_id" AND NOT t."inline")
    WHERE "activity_id" = {row}."email_id";"""
SQLITE_FORWARD = [
    """UPDATE "activities_emailmessage" SET "has_attachment" = EXISTS (SELECT 1 FROM "activities_emailattachment" AS t
        WHERE t."email_id" = "activities_emailmessage"."activity_id" AND NOT t."inline")""",
    f"""CREATE TRIGGER "emailattachment_has_attachment_insert" AFTER INSERT ON "activities_emailattachment"
        BEGIN {_SQLITE_SET.format(row="NEW")} END""",
    f"""CREATE TRIGGER "emailattachment_has_attachment_delete" AFTER DELETE ON "activities_emailattachment"
        BEGIN {_SQLITE_SET.format(row="OLD")} END""",
    f"""CREATE TRIGGER "emailattachment_has_attachment_update" AFTER UPDATE OF "inline", "email_id"
        ON "activities_emailattachment" BEGIN {_SQLITE_SET.format(row="OLD")} {_SQLITE_SET.format(row="NEW")} END""",
]
SQLITE_BACKWARD = [f'DROP TRIGGER IF EXISTS "emailattachment_has_attachment_{op}"' for op in ("insert", "delete", "update")]


class Migration(migrations.Migration):

    dependencies = [
        ("activities", "0009_email_search_recent_first"),
    ]

    operations = [
        migrations.AddField(
            model_name="emailmessage",
            name="has_attachment",
            field=models.BooleanField(default=False, editable=False),
        ),
        RunSQLOnPostgreSQL(sql=FORWARD, reverse_sql=BACKWARD),
        RunSQLOnSQLite(sql=SQLITE_FORWARD, reverse_sql=SQLITE_BACKWARD),
        migrations.AddIndex(
            model_name="emailmessage",
            index=models.Index(condition=models.Q(("has_attachment", True)),
                               fields=["company", "-occurred_at", "-activity"], name="emailmessage_attachment_recent"),
        ),
    ]
