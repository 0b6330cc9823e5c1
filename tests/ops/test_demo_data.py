from __future__ import annotations

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
