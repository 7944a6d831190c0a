"""Fixtures for tests that run pyinfra itself against the sandbox."""

import os

import pytest
from dotenv import dotenv_values

from tests.inventory import nodes


@pytest.fixture(scope="session")
def sandbox_state():
    from sandbox import state

    try:
        return state.load()
    except state.SandboxNotUp:
        pytest.skip("needs the sandbox: python -m sandbox up")


@pytest.fixture(scope="session")
def sandbox_secrets(sandbox_state) -> dict[str, str]:
    return {k: v for k, v in dotenv_values(sandbox_state["secrets_env"]).items() if v}


@pytest.fixture
def env_with(sandbox_secrets, tmp_path):
    """An environment whose .env is the sandbox's with some values replaced."""

    def make(**changes) -> dict:
        values = dict(sandbox_secrets, **changes)
        path = tmp_path / "changed.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
        return dict(os.environ, GALION_ENV_FILE=str(path))

    return make


@pytest.fixture(scope="session")
def node():
    return nodes()[0]
