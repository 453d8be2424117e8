import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Many small tensor ops: intra-op threads only add synchronisation (badly so on a busy host)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
