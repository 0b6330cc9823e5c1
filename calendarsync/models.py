"""Appointments and two-way sync state live here (see the calendar sync issue)."""
