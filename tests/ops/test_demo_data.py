from __future__ import annotations

from django.core import mail
from django.core.management import call_command
from django.test import Client

from accounts.models import Company, User
from activities.models import Activity
from crm.models import Contact
from ops.demo_data import DEMO_LOGINS, DEMO_PASSWORD


def test_demo_data_loads_once_and_a_demo_user_reaches_a_contact_with_activities(db: None) -> None:
    call_command("load_demo_data")
    counts = (Company.objects.count(), User.objects.count(), Contact.objects.count(), Activity.objects.count())
    call_command("load_demo_data")  # running it again changes nothing
    assert (Company.objects.count(), User.objects.count(), Contact.objects.count(), Activity.objects.count()) == counts
    assert counts[0] == 2

    client = Client()
    for login in DEMO_LOGINS:
        signed_in = client.post("/login/", {"username": login.email, "password": DEMO_PASSWORD})
        assert signed_in.status_code == 302, login.email
        client.post("/logout/")
    client.post("/login/", {"username": "james@greenleaf.example", "password": DEMO_PASSWORD})
    contacts_page = client.get("/contacts/").content.decode()
    assert "Dana Whitfield" in contacts_page
    assert "Rita Vasquez" not in contacts_page  # the other company's customer
    dana = Contact.objects.get(first_name="Dana")
    page = client.get(dana.get_absolute_url()).content.decode()
    assert "Question about the mulch color" in page
    assert "Page 1 of 2" in page


def test_the_demo_walks_the_needs_sign_in_journey_the_readme_describes(db: None) -> None:
    """README, "When sync breaks": in the demo, Maria presses Ask to reconnect on Sync health, and
    the colleague reads the email and the banner: the demo data has a mailbox that needs a sign-in."""
    call_command("load_demo_data")
    maria, priya = Client(), Client()
    maria.post("/login/", {"username": "maria@greenleaf.example", "password": DEMO_PASSWORD})
    priya.post("/login/", {"username": "priya@greenleaf.example", "password": DEMO_PASSWORD})

    assert "Aspire can no longer sync your mailbox" in priya.get("/contacts/").content.decode()
    health = maria.get("/sync-health/").content.decode()
    assert "Needs sign-in" in health and 'aria-label="Ask Priya Shah to reconnect"' in health
    connection = User.objects.get(email="priya@greenleaf.example").mailbox
    asked = maria.post(f"/sync-health/{connection.pk}/ask-to-reconnect/", follow=True).content.decode()
    assert "Asked Priya Shah to reconnect" in asked
    assert [message.to for message in mail.outbox] == [["priya@greenleaf.example"]]
