from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Benchmarks: management commands that measure the product at a real customer's size. They may
    use every app and the sandbox; no product app imports them."""

    name = "bench"
    verbose_name = "Benchmarks"
