"""tests/typing/ holds code for mypy to check (tests/test_typing.py), not for pytest to run."""

collect_ignore = ["user_code.py"]
