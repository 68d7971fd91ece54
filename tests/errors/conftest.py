from tests.errors.catalogue import example, example_template  # noqa: F401
