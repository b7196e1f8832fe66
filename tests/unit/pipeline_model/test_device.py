import pytest
import torch

from libs.pipeline import device as device_mod
from libs.pipeline.device import DeviceError, DeviceManager, configure_threads


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(device_mod, "available_devices", lambda: ["cpu"])
    monkeypatch.delenv("KTRDR_DEVICE", raising=False)


def test_auto_picks_the_best_available(monkeypatch):
    monkeypatch.delenv("KTRDR_DEVICE", raising=False)
    monkeypatch.setattr(device_mod, "available_devices", lambda: ["cuda", "cpu"])
    monkeypatch.setattr(device_mod, "_device_name", lambda kind: f"fake {kind}")
    assert DeviceManager.resolve().type == "cuda"
    assert DeviceManager.resolve("cpu").type == "cpu"


def test_unavailable_device_is_a_clear_error(cpu_only):
    with pytest.raises(DeviceError, match=r"'cuda' was requested.*available: cpu"):
        DeviceManager.resolve("cuda")


def test_unknown_device_lists_the_valid_ones(cpu_only):
    with pytest.raises(DeviceError, match="valid: auto, cpu, cuda, mps"):
        DeviceManager.resolve("tpu")


def test_env_variable_is_used_and_the_argument_wins(cpu_only, monkeypatch):
    monkeypatch.setenv("KTRDR_DEVICE", "mps")
    with pytest.raises(DeviceError, match="'mps'"):
        DeviceManager.resolve()
    assert DeviceManager.resolve("CPU").type == "cpu"


def test_capabilities_on_cpu(cpu_only):
    caps = DeviceManager.resolve("cpu").capabilities()
    assert caps["type"] == "cpu"
    assert caps["torch_version"] == torch.__version__
    assert caps["threads"] == torch.get_num_threads()
    assert "cuda_capability" not in caps


def test_configure_threads_honours_an_explicit_count():
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_configure_threads_default_env_and_bad_values(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(device_mod, "usable_cpu_count", lambda: 4)
    try:
        monkeypatch.delenv("KTRDR_TORCH_THREADS", raising=False)
        assert configure_threads() == device_mod.DEFAULT_TRAINING_THREADS
        monkeypatch.setenv("KTRDR_TORCH_THREADS", "3")
        assert configure_threads() == 3 == torch.get_num_threads()
        assert configure_threads(64) == 4  # capped by what the process may use
        monkeypatch.setenv("KTRDR_TORCH_THREADS", "many")
        with pytest.raises(DeviceError, match="KTRDR_TORCH_THREADS"):
            configure_threads()
    finally:
        torch.set_num_threads(before)
