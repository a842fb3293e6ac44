"""Build a small pyannote diarization pipeline with random weights, locally, with no model hub.

The folder has the layout of `pyannote/speaker-diarization-community-1` (config.yaml with
`$model/segmentation`, `$model/embedding` and `$model/plda`), so the real pyannote.audio classes
load it exactly as they load a cloned community-1 folder, fully offline:

- segmentation/pytorch_model.bin: pyannote's PyanNet (SincNet + LSTM) with a tiny LSTM and
  segmentation-3.0's powerset task (3 speakers, at most 2 at once), saved as a pyannote checkpoint;
- embedding/pytorch_model.bin: a WeSpeaker ResNet with one block per stage and 4 channels instead
  of ResNet34's 32 (256-dimensional output, like community-1's embedding): ResNet34 takes about
  a second per 10-second crop on a small CPU, this one a few milliseconds;
- plda/xvec_transform.npz and plda/plda.npz: the keys and shapes VBx reads in
  `pyannote.audio.utils.vbx.vbx_setup` (mean1 (256,), mean2 (128,), lda (256, 128);
  mu (128,), tr (128, 128), psi (128,)), filled so that the generalized eigenproblem is well posed.

The weights are random: speakers found by this pipeline mean nothing. It exists to test the
pipeline code and to smoke-test an environment (torch, torchaudio, pyannote, the GPU) without a
token or a network. It lives in the package, not in tests/, because a rendered image can run it
at build time to prove that diarization works there. Needs pyannote.audio >= 4 (for VBx and
`$model/` folders); imports torch and pyannote at import time, unlike envsolve.pipeline.diarize.

    python -m envsolve.pipeline.tinymodels /tmp/tiny-pyannote
"""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")  # before pyannote's telemetry reads it

import lightning
import numpy as np
import pyannote.audio
import torch
from pyannote.audio.core.model import Model
from pyannote.audio.core.task import Problem, Resolution, Specifications
from pyannote.audio.models.embedding.wespeaker import BaseWeSpeakerResNet
from pyannote.audio.models.embedding.wespeaker.resnet import BasicBlock, ResNet
from pyannote.audio.models.segmentation import PyanNet

__all__ = ["EMBEDDING_DIMENSION", "LDA_DIMENSION", "TinyWeSpeakerResNet", "build_pipeline_folder"]

EMBEDDING_DIMENSION = 256  # community-1's WeSpeaker ResNet34 output
LDA_DIMENSION = 128  # PLDA's default lda_dimension in pyannote.audio.core.plda

# community-1's config.yaml, as two independent copies of the gated file and
# SpeakerDiarization.default_parameters() agree (research notes, pipeline.md 3.2).
PIPELINE_CONFIG: dict[str, Any] = {
    "dependencies": {"pyannote.audio": "4.0.0"},
    "pipeline": {
        "name": "pyannote.audio.pipelines.SpeakerDiarization",
        "params": {
            "clustering": "VBxClustering",
            "embedding": "$model/embedding",
            "embedding_batch_size": 32,
            "embedding_exclude_overlap": True,
            "plda": "$model/plda",
            "segmentation": "$model/segmentation",
            "segmentation_batch_size": 32,
        },
    },
    "params": {
        "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8},
        "segmentation": {"min_duration_off": 0.0},
    },
}

README = """\
# Tiny pyannote pipeline with RANDOM weights

Built by `python -m envsolve.pipeline.tinymodels` for tests and environment smoke checks.
Its speakers mean nothing. For real diarization use a clone of
https://hf.co/pyannote/speaker-diarization-community-1 instead.
"""


# Without pyannote installed mypy sees Any here (misc); with it, typed classes (unused-ignore).
class TinyWeSpeakerResNet(BaseWeSpeakerResNet):  # type: ignore[misc,unused-ignore]
    """WeSpeaker's ResNet with one BasicBlock per stage and 4 base channels (ResNet34: 3-4-6-3, 32)."""

    def __init__(
        self,
        sample_rate: int = 16000,
        num_channels: int = 1,
        num_mel_bins: int = 80,
        frame_length: int = 25,
        frame_shift: int = 10,
        dither: float = 0.0,
        window_type: str = "hamming",
        use_energy: bool = False,
        task: Any = None,
    ) -> None:
        super().__init__(
            sample_rate=sample_rate,
            num_channels=num_channels,
            num_mel_bins=num_mel_bins,
            frame_length=frame_length,
            frame_shift=frame_shift,
            dither=dither,
            window_type=window_type,
            use_energy=use_energy,
            task=task,
        )
        self.resnet = ResNet(  # type: ignore[no-untyped-call,unused-ignore]
            BasicBlock,
            [1, 1, 1, 1],
            m_channels=4,
            feat_dim=num_mel_bins,
            embed_dim=EMBEDDING_DIMENSION,
            pooling_func="TSTP",
            two_emb_layer=False,
        )


def _segmentation_model() -> Any:
    model = PyanNet(
        sincnet={"stride": 10},
        lstm={"hidden_size": 16, "num_layers": 1, "bidirectional": True, "monolithic": True},
        linear={"hidden_size": 16, "num_layers": 1},
    )
    model.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=10.0,
        classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2,
        permutation_invariant=True,
    )
    model.build()  # type: ignore[no-untyped-call,unused-ignore]  # adds the task-dependent classifier and activation
    return model


def _embedding_model() -> Any:
    model = TinyWeSpeakerResNet()
    # What pyannote's own WeSpeaker converter (models/embedding/wespeaker/convert.py) attaches.
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0)
    return model


def save_checkpoint(model: Any, path: Path) -> None:
    """Save `model` as the pytorch_model.bin that `Model.from_pretrained` reads.

    Lightning's own checkpoint keys plus pyannote's (filled by `Model.on_save_checkpoint`), so that
    `load_from_checkpoint` rebuilds the class from `hyper_parameters` and the task from
    `specifications`, without a Trainer.
    """
    checkpoint: dict[str, Any] = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    model.on_save_checkpoint(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)


def _plda_arrays(rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
    lda = rng.standard_normal((EMBEDDING_DIMENSION, LDA_DIMENSION)) / np.sqrt(EMBEDDING_DIMENSION)
    transform = {
        "mean1": np.zeros(EMBEDDING_DIMENSION),
        "mean2": np.zeros(LDA_DIMENSION),
        "lda": lda,
    }
    # An orthogonal `tr` makes the within-class covariance the identity, and a positive, spread-out
    # `psi` a valid between-class one: vbx_setup's eigh(B, W) needs W positive definite.
    tr, _ = np.linalg.qr(rng.standard_normal((LDA_DIMENSION, LDA_DIMENSION)))
    plda = {
        "mu": np.zeros(LDA_DIMENSION),
        "tr": tr,
        "psi": np.geomspace(10.0, 0.1, LDA_DIMENSION),
    }
    return transform, plda


def build_pipeline_folder(folder: Path | str, *, seed: int = 0) -> Path:
    """Write the random-weight pipeline folder (config.yaml, segmentation/, embedding/, plda/); return it.

    The same seed gives the same weights. Takes about a second; the folder is under 1 MB.
    """
    major = int(pyannote.audio.__version__.split(".")[0])
    if major < 4:
        raise RuntimeError(f"tiny pyannote models need pyannote.audio >= 4, found {pyannote.audio.__version__}")
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    save_checkpoint(_segmentation_model(), root / "segmentation" / "pytorch_model.bin")
    save_checkpoint(_embedding_model(), root / "embedding" / "pytorch_model.bin")
    transform, plda = _plda_arrays(np.random.default_rng(seed))
    (root / "plda").mkdir(exist_ok=True)
    np.savez(root / "plda" / "xvec_transform.npz", **transform)
    np.savez(root / "plda" / "plda.npz", **plda)
    yaml = importlib.import_module("yaml")  # PyYAML comes with pyannote.audio; untyped
    (root / "config.yaml").write_text(yaml.safe_dump(PIPELINE_CONFIG, sort_keys=False), encoding="utf-8")
    (root / "README.md").write_text(README, encoding="utf-8")
    return root


def load_model(path: Path | str) -> Model:
    """Load a checkpoint written by `save_checkpoint`, the way the pipeline does (for checks)."""
    model = Model.from_pretrained(Path(path))
    if model is None:
        raise FileNotFoundError(path)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a random-weight pyannote pipeline folder.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # Under `python -m` this file is __main__; checkpoints must name the importable module instead.
    from envsolve.pipeline.tinymodels import build_pipeline_folder as build

    print(build(args.folder, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
