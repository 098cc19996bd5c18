import pytest


@pytest.fixture
def one_torch_thread():
    """Run a test's tiny matrices on one thread: several times faster than two on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
