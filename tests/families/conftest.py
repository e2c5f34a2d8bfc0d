"""Fixtures of the family tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread for a test of tiny nets (diffusion's, flow matching's): faster than two,
    by far on a shared machine. A module opts in with pytest.mark.usefixtures("one_thread")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
