"""NCCL between GPUs that cannot reach each other (Kaggle's two T4s): peer-to-peer off for the workers, said once.

No GPU here: torch's CUDA answers are faked, and detectron2's ``launch`` is replaced by one that records
the environment the workers would start with (spawned workers inherit it).
"""

import os

import detectron2.engine
import pytest
import torch

from tinyvoc.training import distributed
from tinyvoc.training.distributed import World


@pytest.fixture
def gpus(monkeypatch):
    """Two visible GPUs whose peer access the test decides; the workers' environment recorded at launch."""
    monkeypatch.delenv("NCCL_P2P_DISABLE", raising=False)
    peer = {"ok": False}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "can_device_access_peer", lambda i, j: peer["ok"])
    launched = []
    monkeypatch.setattr(
        detectron2.engine, "launch", lambda *a, **k: launched.append(os.environ.get("NCCL_P2P_DISABLE"))
    )
    return peer, launched


def test_unreachable_gpus_get_nccl_p2p_disabled_for_the_workers_and_the_log_says_so(gpus, capsys):
    peer, launched = gpus
    distributed.run_workers(print, World(2))
    assert launched == ["1"]
    assert "GPUs 0 and 1 cannot access each other's memory" in capsys.readouterr().out
    assert "NCCL_P2P_DISABLE" not in os.environ  # only for the workers of that call

    peer["ok"] = True  # GPUs with peer access keep NCCL's default
    distributed.run_workers(print, World(2))
    assert launched[-1] is None and "NCCL_P2P_DISABLE" not in capsys.readouterr().out


def test_one_worker_or_the_users_own_setting_is_left_alone(gpus, monkeypatch, capsys):
    _, launched = gpus
    distributed.run_workers(print, World(1))
    assert launched == [None]
    monkeypatch.setenv("NCCL_P2P_DISABLE", "0")
    distributed.run_workers(print, World(2))
    assert launched[-1] == "0" and "cannot access" not in capsys.readouterr().out


def test_no_cuda_means_no_peer_question(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "can_device_access_peer", lambda i, j: pytest.fail("asked without CUDA"))
    assert distributed.unreachable_pair(2) is None
