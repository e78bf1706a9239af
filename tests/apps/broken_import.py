"""A module that exists but imports one that does not."""

import levante_tests_missing_dependency  # noqa: F401

app = None
