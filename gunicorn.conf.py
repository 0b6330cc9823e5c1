"""Gunicorn's settings for production (the Dockerfile and docker-compose.yml start it with these).

The access log has the path without its query string and no referrer: the OAuth callback's
``code`` and ``state``, or a page address a referrer would repeat, never reach it.
"""

# Reference: https://docs.gunicorn.org/en/stable/settings.html#access-log-format
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
# Request lines and headers of a sane size; the body's size is refused by Content-Length in the
# app (and by the proxy in front, see README "Production").
limit_request_line = 8190
limit_request_field_size = 8190
