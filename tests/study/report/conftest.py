"""Shared fixtures for the study tests: one generated quick demo study per session."""

from __future__ import annotations

import pytest

from hiddenpop.study.demo import write_demo_study


@pytest.fixture(scope="session")
def demo_study(tmp_path_factory):
    """The test-profile synthetic study (no MCMC) (data + study.toml); treat as read-only."""
    folder = tmp_path_factory.mktemp("demo-study")
    return write_demo_study(folder, seed=7, profile="test")
