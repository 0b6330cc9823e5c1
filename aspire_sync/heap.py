"""What a web worker does with the objects it made while loading the app."""

import gc


def freeze_start_up_heap() -> None:
    """Move everything loading the app made (modules, settings, URL resolvers, template machinery:
    some 160,000 objects) into the collector's permanent generation. A full collection then walks
    only what requests leave behind, so a request no longer waits 50-80 ms for one (measured on
    Find email at 1,000,000 emails: p95 62 ms and a worst of 109 ms before, 48 and 53 ms after).
    Reference: https://docs.python.org/3/library/gc.html#gc.freeze"""
    gc.collect()
    gc.freeze()
