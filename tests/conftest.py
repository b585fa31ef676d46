"""Test-wide environment: nothing writes outside temp dirs; Prefect and DVC stay quiet."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_HOME = tempfile.mkdtemp(prefix="dscoder-test-prefect-")
os.environ.setdefault("PREFECT_HOME", _HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ.setdefault("DVC_SITE_CACHE_DIR", os.path.join(_HOME, "dvc-site-cache"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# torch.compile's C++ build imports setuptools; once any test has imported the standard
# library's distutils, setuptools' distutils shim would assert. Use the standard one throughout.
os.environ.setdefault("SETUPTOOLS_USE_DISTUTILS", "stdlib")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `stages` and `flows` are imported from the repo root


@pytest.fixture(scope="session")
def prefect_harness():
    """An in-process Prefect backend for tests that run flows directly."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def prefect_api():
    """A real `prefect server start` on 127.0.0.1 for tests that run stage processes."""
    from flows.server import prefect_server

    with prefect_server(log_path=os.path.join(_HOME, "server.log")) as url:
        yield url
