"""The web worker's application module: loading it leaves the start-up heap out of later
collections (``aspire_sync.heap``)."""

import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import gc
before = gc.get_freeze_count()
import aspire_sync.wsgi
print(before, gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_loading_the_application_freezes_what_start_up_made() -> None:
    # A fresh interpreter, as a gunicorn worker imports the module after it forks.
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=settings.BASE_DIR, env=dict(os.environ),
                            capture_output=True, text=True, timeout=120, check=True)
    before, frozen, tracked = (int(n) for n in result.stdout.split()[-3:])
    assert before == 0
    # Django, the apps, their URLs and templates' machinery: tens of thousands of objects, now
    # permanent; what the collector still walks is a small remainder.
    assert frozen > 50_000, frozen
    assert tracked < frozen / 5, (tracked, frozen)
