"""The settings page of a company of a few hundred people: the Shared with boxes and the time zone
choice are drawn without a widget template per colleague or per zone, and say the same."""

from __future__ import annotations

import re

from accounts.models import Company, MailboxConnection, User
from tests.conftest import client_for
from tests.mailboxes import settings_form


def test_the_settings_page_shows_who_the_calendar_is_shared_with_and_the_time_zone(
    bob: User, alice: User, greenleaf: Company
) -> None:
    colleagues = [User.objects.create_user(f"crew{n}@greenleaf.example", "x", full_name=f"Crew {n:03d}",
                                           company=greenleaf) for n in range(150)]
    connection = MailboxConnection.objects.create(user=bob, company=greenleaf, provider="google",
                                                  mailbox_address=bob.email, calendar_privacy="private")
    connection.shared_with.set([alice, colleagues[7]])
    bob.time_zone = "Europe/Lisbon"
    bob.save(update_fields=["time_zone"])
    page = client_for(bob).get("/settings/").content.decode()
    boxes = re.findall(r'<input type="checkbox" name="sync-shared_with" value="([^"]+)" id="(id_sync-shared_with_\d+)"'
                       r'( checked)?>', page)
    assert len(boxes) == 151  # everyone but Bob
    assert {value for value, _, checked in boxes if checked} == {str(alice.pk), str(colleagues[7].pk)}
    assert all(f'<label class="radio" for="{box_id}">' in page for _, box_id, _ in boxes)
    assert '<optgroup label="Europe">' in page and '<option value="Europe/Lisbon" selected>Lisbon</option>' in page
    assert page.count(" selected>") >= 1 and '<option value="America/New_York">New York</option>' in page

    # A form sent back with an error shows what was sent, not what was saved.
    sent = settings_form(bob, sync_email=True, mailbox_address="not-an-address", shared_with=str(colleagues[3].pk))
    again = client_for(bob).post("/settings/", sent).content.decode()
    checked = re.findall(r'value="([^"]+)" id="id_sync-shared_with_\d+" checked', again)
    assert checked == [str(colleagues[3].pk)]
