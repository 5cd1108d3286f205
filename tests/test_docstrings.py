"""The usage examples in module docstrings run (as doctests), and answer what they show.

Each module is imported as the gateway imports it and its examples run with `doctest`, as
`python -m doctest gateway/upstream/loaders.py` would run them; any example that fails,
or a module that lost its examples, fails the test (the failures are in its output).
"""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import gateway.schema.context
import gateway.upstream.cache
import gateway.upstream.loaders

MODULES = [gateway.upstream.loaders, gateway.upstream.cache, gateway.schema.context]


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_the_usage_examples_run(module: ModuleType) -> None:
    failed, attempted = doctest.testmod(module, report=False)
    assert attempted > 0, f"{module.__name__} has no examples to run"
    assert failed == 0, f"{failed} of {attempted} examples of {module.__name__} failed"
