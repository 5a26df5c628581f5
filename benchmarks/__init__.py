"""Speed targets of the bookstore services (`nox -s bench`, `python -m benchmarks`); not tests."""
