"""The capture pipeline's and the send queue's state live here (see the mail sync issue)."""
