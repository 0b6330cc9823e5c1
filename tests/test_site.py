"""What every page of the site shares."""

from __future__ import annotations

import struct

from django.test import Client


def test_the_favicon_is_served_to_anyone(db: None) -> None:
    response = Client().get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert "max-age=604800" in response["Cache-Control"]
    icon = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    reserved, kind, count = struct.unpack("<HHH", icon[:6])
    assert (reserved, kind, count) == (0, 1, 1)  # an icon file with one image...
    width, height = icon[6], icon[7]
    offset = struct.unpack("<I", icon[18:22])[0]
    assert (width, height) == (32, 32) and icon[offset:offset + 8] == b"\x89PNG\r\n\x1a\n"  # ...a 32x32 PNG
