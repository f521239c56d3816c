"""The local embedding model in ONNX Runtime: the vectors torch gives, an export made once and
checked, torch never loaded once the export exists, torch when the export can't be had."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from memoryweb.ai import local_model

BASE_DIR = Path(__file__).resolve().parents[2]
TEXTS = [
    "I'm vegetarian.",
    "",
    "   ",
    "What did Caroline research in May, and who went with her to the support group?",
    "über café 日本語 🎉 \u202e reversed \x00 nul",
    "word " * 2000,  # longer than the model reads: cut at its 256 word pieces, as torch cuts it
    "Melanie: I ran a charity race for mental health last Saturday.\nCaroline: That's great!",
]


@pytest.fixture(scope="module")
def torch_encoder():
    return local_model.TorchEncoder()


def test_onnx_embeds_what_torch_embeds(torch_encoder):
    onnx = local_model.OnnxEncoder(local_model.exported())
    for batch_size in (1, 3, 16):  # texts sorted by length into batches, given back in order
        ours = onnx.encode(TEXTS, batch_size)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        cosine = (ours * torch_encoder.encode(TEXTS, 16)).sum(axis=1)
        assert cosine.min() > 0.9999, cosine
    counted = ["hello world", "word " * 2000]
    assert onnx.token_counts(counted) == [4, local_model.max_tokens()]
    assert torch_encoder.token_counts(counted) == onnx.token_counts(counted)


def test_the_export_is_made_once_and_checked(settings, tmp_path):
    settings.EMBEDDING_CACHE_DIR = tmp_path / "models"
    path = local_model.exported()
    assert path.parent == tmp_path / "models" and path.stat().st_size > 10_000_000
    made = path.stat().st_mtime_ns
    assert local_model.exported() == path and path.stat().st_mtime_ns == made
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".part"] == []


def test_an_export_unlike_torch_is_not_used(settings, tmp_path, monkeypatch):
    settings.EMBEDDING_CACHE_DIR = tmp_path
    monkeypatch.setattr(local_model, "MIN_PROBE_COSINE", 1.5)  # no export can pass
    with pytest.raises(local_model.ExportError, match="unlike torch"):
        local_model.exported()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []


def test_torch_embeds_when_the_export_cannot_be_made(settings, tmp_path, caplog):
    (tmp_path / "not a folder").write_text("")
    settings.EMBEDDING_CACHE_DIR = tmp_path / "not a folder"
    with caplog.at_level(logging.ERROR, logger="memoryweb.ai.local_model"):
        encoder = local_model.load_encoder()
    assert isinstance(encoder, local_model.TorchEncoder)
    assert "embedding with torch" in caplog.text
    settings.EMBEDDING_RUNTIME = "torch"
    assert isinstance(local_model.load_encoder(), local_model.TorchEncoder)


PROBE = (
    "import sys; from memoryweb.ai.embeddings import embed_texts; "
    "v = embed_texts(['I am vegetarian'])[0]; "
    "print(len(v), 'torch' in sys.modules, 'sentence_transformers' in sys.modules)"
)


def _shell(cache: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "MEMORYWEB_DATA_DIR": str(settings.DATA_DIR),
        "EMBEDDING_CACHE_DIR": str(cache),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_processes_starting_together_export_once_then_never_load_torch(tmp_path, django_db_setup):
    # a web process and two workers starting on a new install: one exports, the others wait for it
    starting = [_shell(tmp_path) for _ in range(2)]
    loaded_torch = []
    for process in starting:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        assert out.split()[-3] == "384"
        loaded_torch.append(out.split()[-2] == "True")
    assert loaded_torch.count(True) == 1  # the one that exported (and checked) it
    assert len(list(tmp_path.glob("*.onnx"))) == 1
    # a process that finds the export never imports torch: seconds sooner, hundreds of MB less
    later = _shell(tmp_path)
    out, err = later.communicate(timeout=300)
    assert later.returncode == 0, err
    assert out.split()[-3:] == ["384", "False", "False"]
