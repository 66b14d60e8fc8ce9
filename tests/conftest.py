"""pytest setup for tests/test_*.py: the `zjq` fixture from zjqtest."""

from zjqtest import zjq  # noqa: F401 (the fixture every test uses)
