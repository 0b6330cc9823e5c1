"""A local, stateful emulator of Microsoft identity + Graph and Google OAuth + Gmail + Calendar.

It imports nothing of the product. Run it with ``python -m sandbox --port 8025``.
"""
