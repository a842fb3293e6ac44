"""The ast readers behind the code-derived matrix fields (derive/_pyast.py), on small sources."""

from __future__ import annotations

import ast

from envsolve.derive import _pyast


def test_torchaudio_uses_are_module_precise() -> None:
    tree = ast.parse("from torchaudio.backend.common import AudioMetaData\nimport torchaudio\n"
                     "def f():\n    return torchaudio.info('x')\n")
    anywhere, at_import = _pyast.torchaudio_uses(tree)
    assert anywhere == {"backend.common.AudioMetaData", "info"}
    assert at_import == {"backend.common.AudioMetaData"}
    top = ast.parse("from torchaudio import AudioMetaData\nimport torchaudio.backend.common\n")
    assert _pyast.torchaudio_uses(top)[0] == {"AudioMetaData", "backend.common"}


def test_call_keywords_follow_a_dict_and_its_deletions() -> None:
    tree = ast.parse("def load_model(asr_options=None):\n"
                     "    default_asr_options = {'beam_size': 5, 'max_new_tokens': None, 'suppress_numerals': False}\n"
                     "    suppress = default_asr_options['suppress_numerals']\n"
                     "    del default_asr_options['suppress_numerals']\n"
                     "    return faster_whisper.transcribe.TranscriptionOptions(**default_asr_options, patience=1)\n")
    assert _pyast.call_keywords(tree, "TranscriptionOptions") == {"beam_size", "max_new_tokens", "patience"}


def test_method_call_keywords_and_class_fields() -> None:
    diarize = ast.parse("m = Pipeline.from_pretrained(name, use_auth_token=tok).to(d)\n")
    assert _pyast.method_call_keywords(diarize, "Pipeline", "from_pretrained") == {"use_auth_token"}
    options = ast.parse("class TranscriptionOptions(NamedTuple):\n    beam_size: int\n    patience: float\n")
    assert _pyast.class_fields(options, "TranscriptionOptions") == ["beam_size", "patience"]
    assert _pyast.class_fields(options, "Other") is None
