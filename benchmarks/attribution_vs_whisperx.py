"""Speaker attribution: envsolve's sweep against WhisperX's own `assign_word_speakers`, on 10 hours.

Usage (from the repository root):

    python benchmarks/attribution_vs_whisperx.py --setup   # once: a venv with whisperx, no torch
    .venv/bin/python benchmarks/attribution_vs_whisperx.py

`--setup` creates /tmp/envsolve-bench-whisperx (override with --venv) and runs in it
`pip install whisperx==3.8.6 --no-deps` and `pip install numpy pandas`. Importing
`whisperx.diarize` needs torch and pyannote.audio (module-level imports), so the worker reads the
installed `whisperx/diarize.py`, takes the `IntervalTree` class and the `assign_word_speakers`
function out of it unchanged (ast), and executes them with numpy and pandas. The code timed is
WhisperX's, byte for byte; only the module's torch/pyannote imports are skipped.

The input is synthetic and seeded: 10 h, about 90k words in about 6k segments, 36k turns of
6 speakers, with gaps between turns, 1 % zero-length words, and a second diarization with
backchannel turns overlapping the main ones. Each side runs in its own interpreter; each time is
the best of --repeat runs of the call alone (WhisperX's dataframe and the transcript dict are built
outside the timed region, since they are its inputs).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_VENV = Path("/tmp/envsolve-bench-whisperx")
HOURS, WORDS, TURNS, SPEAKERS, SEED = 10, 90_000, 36_000, 6, 1338


def synthesize(seed: int = SEED) -> dict[str, Any]:
    """Words grouped in segments, exclusive turns, and turns with overlapping backchannels."""
    rng = random.Random(seed)
    exclusive: list[list[Any]] = []
    clock = 0.0
    while len(exclusive) < TURNS:
        if rng.random() < 0.15:
            clock += rng.uniform(0.1, 2.5)  # silence the diarizer left unlabelled
        length = rng.uniform(0.2, 1.4)
        exclusive.append([round(clock, 3), round(clock + length, 3), f"SPEAKER_{rng.randrange(SPEAKERS):02d}"])
        clock += length
    overlapping = [list(turn) for turn in exclusive]
    for start, end, speaker in exclusive:
        if rng.random() < 0.1:  # "mm-hm" from someone else during the turn
            other = f"SPEAKER_{(int(speaker[-2:]) + rng.randrange(1, SPEAKERS)) % SPEAKERS:02d}"
            begin = rng.uniform(start, end)
            overlapping.append([round(begin, 3), round(begin + rng.uniform(0.2, 1.0), 3), other])
    rng.shuffle(overlapping)  # an answer should not depend on the order the turns arrive in
    segments, words, clock = [], 0, 0.0
    while words < WORDS:
        seg_words = []
        for _ in range(rng.randint(5, 25)):
            clock += rng.uniform(0.0, 0.2)
            length = 0.0 if rng.random() < 0.01 else rng.uniform(0.05, 0.55)
            start = round(clock, 2)  # faster-whisper reports word times to 10 ms
            seg_words.append([start, round(clock + length, 2) if length else start, f" w{words}"])
            clock += length
            words += 1
        segments.append(seg_words)
    return {"segments": segments, "exclusive": exclusive, "overlapping": overlapping, "seconds": clock}


def run_envsolve(data: dict[str, Any], turns_key: str, max_gap: float, repeat: int) -> tuple[float, float, list[Any]]:
    """Best times of the whole `attribute` (speakers, segment splitting, new dataclasses) and of its
    core `assign_speakers`, and the speaker of every word in input order."""
    from envsolve.pipeline.attribution import assign_speakers, attribute
    from envsolve.pipeline.model import Segment, Transcript, Turn, Word

    segments = tuple(
        Segment(ws[0][0], ws[-1][1], "".join(w[2] for w in ws), tuple(Word(s, e, t) for s, e, t in ws))
        for ws in data["segments"]
    )
    transcript = Transcript(segments)
    turns = [Turn(s, e, label) for s, e, label in data[turns_key]]
    spans = [(w[0], w[1]) for ws in data["segments"] for w in ws]
    whole = core = math.inf
    result = transcript
    for _ in range(repeat):
        began = time.perf_counter()
        result = attribute(transcript, turns, max_gap=max_gap)
        whole = min(whole, time.perf_counter() - began)
        began = time.perf_counter()
        assign_speakers(spans, turns, max_gap=max_gap)
        core = min(core, time.perf_counter() - began)
    # Splitting at speaker changes regroups words; their order is unchanged.
    return whole, core, [word.speaker for segment in result.segments for word in segment.words]


def is_exact_tie(word: list[Any], turns: list[list[Any]], one: str, other: str) -> bool:
    """Whether two speakers overlap `word` equally, through turns that start at the same time.

    `turns` must be sorted by start (so the sums add up in WhisperX's order)."""
    totals: dict[str, float] = {}
    first: dict[str, float] = {}
    for start, end, speaker in turns:
        overlap = min(word[1], end) - max(word[0], start)
        if overlap > 0:
            totals[speaker] = totals.get(speaker, 0.0) + overlap
            first.setdefault(speaker, start)
    return (totals.get(one), first.get(one)) == (totals.get(other), first.get(other)) and one in totals


def load_whisperx_assign() -> tuple[Any, str]:
    """WhisperX's assign_word_speakers, executed from the installed source without torch/pyannote."""
    import importlib.metadata
    import importlib.util
    import typing

    import numpy as np
    import pandas as pd

    spec = importlib.util.find_spec("whisperx")
    assert spec is not None and spec.submodule_search_locations, "whisperx is not installed here"
    source_path = Path(next(iter(spec.submodule_search_locations))) / "diarize.py"
    tree = ast.parse(source_path.read_text(encoding="utf-8"))
    wanted = {"IntervalTree", "assign_word_speakers"}
    module = ast.Module(
        body=[n for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef) and n.name in wanted],
        type_ignores=[],
    )
    # What the exec'd code names: its typing imports, and two TypedDicts of whisperx.schema that
    # appear only in annotations.
    namespace: dict[str, Any] = {name: getattr(typing, name) for name in ("Optional", "Union", "List", "Tuple")}
    namespace |= {"np": np, "pd": pd, "AlignedTranscriptionResult": dict, "TranscriptionResult": dict}
    exec(compile(module, str(source_path), "exec"), namespace)
    version = importlib.metadata.version("whisperx")
    return namespace["assign_word_speakers"], f"whisperx {version}, {source_path}"


def whisperx_worker(data_path: str, out_path: str, repeat: int) -> None:
    """Runs inside the whisperx venv: time WhisperX on both diarizations, with and without fill_nearest."""
    import pandas as pd

    assign, origin = load_whisperx_assign()
    data = json.loads(Path(data_path).read_text())
    transcript = {
        "segments": [
            {"start": ws[0][0], "end": ws[-1][1], "words": [{"word": t, "start": s, "end": e} for s, e, t in ws]}
            for ws in data["segments"]
        ]
    }
    report: dict[str, Any] = {"origin": origin}
    for turns_key in ("exclusive", "overlapping"):
        frame = pd.DataFrame(data[turns_key], columns=["start", "end", "speaker"])
        for fill in (False, True):
            best, result = math.inf, transcript
            for _ in range(repeat):
                fresh = copy.deepcopy(transcript)
                began = time.perf_counter()
                result = assign(frame, fresh, fill_nearest=fill)
                best = min(best, time.perf_counter() - began)
            speakers = [w.get("speaker") for seg in result["segments"] for w in seg["words"]]
            report[f"{turns_key}/{fill}"] = {"seconds": best, "speakers": speakers}
    Path(out_path).write_text(json.dumps(report))


def setup(venv: Path) -> None:
    """Create the WhisperX venv: whisperx without its torch/pyannote dependencies, plus numpy and pandas."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "whisperx==3.8.6", "--no-deps"], check=True)
    subprocess.run([*pip, "numpy", "pandas"], check=True)


def compare(ours: list[Any], theirs: list[Any], words: list[list[Any]], turns: list[list[Any]]) -> dict[str, int]:
    """Count agreement, and sort each disagreement by its cause."""
    counts = dict.fromkeys(
        ("both", "differ", "tie", "zero_length", "gap", "only_envsolve", "only_zero", "only_whisperx"), 0
    )
    turns = sorted(turns, key=lambda t: t[0])
    for mine, other, word in zip(ours, theirs, words, strict=True):
        zero = word[0] == word[1]
        if mine is not None and other is not None:
            counts["both"] += 1
            if mine != other:
                counts["differ"] += 1
                # Either an exact tie (WhisperX then follows the input order of the turns), or
                # fill_nearest's rule (nearest turn midpoint) against envsolve's (nearest edge,
                # and the turn around a zero-length word).
                cause = "tie" if is_exact_tie(word, turns, mine, other) else ("zero_length" if zero else "gap")
                counts[cause] += 1
        elif mine is not None:
            counts["only_zero" if zero else "only_envsolve"] += 1
        elif other is not None:
            counts["only_whisperx"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the whisperx venv (see --setup)")
    parser.add_argument("--setup", action="store_true", help="create the whisperx venv, then exit")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--whisperx-worker", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup:
        setup(args.venv)
        return
    if args.whisperx_worker:
        data_path, out_path = args.whisperx_worker
        whisperx_worker(data_path, out_path, args.repeat)
        return
    data = synthesize()
    words = [w for ws in data["segments"] for w in ws]
    zero_length = [w[0] == w[1] for w in words]
    print(
        f"input: {data['seconds'] / 3600:.2f} h, {len(words)} words ({sum(zero_length)} zero-length) "
        f"in {len(data['segments'])} segments; {len(data['exclusive'])} exclusive turns, "
        f"{len(data['overlapping'])} overlapping turns; seed {SEED}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        data_path, out_path = os.path.join(scratch, "in.json"), os.path.join(scratch, "out.json")
        Path(data_path).write_text(json.dumps(data))
        python = args.venv / "bin" / "python"
        if not python.exists():
            sys.exit(f"no whisperx venv at {args.venv}: run `{sys.argv[0]} --setup` first")
        worker = [str(python), __file__, "--whisperx-worker", data_path, out_path, "--repeat", str(args.repeat)]
        subprocess.run(worker, check=True)
        theirs = json.loads(Path(out_path).read_text())
    print(f"whisperx: {theirs['origin']} (IntervalTree + assign_word_speakers exec'd from source)")
    print(f"timings: best of {args.repeat}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    for turns_key in ("exclusive", "overlapping"):
        for fill, gap in ((False, 1.0), (True, math.inf)):
            whole, core, ours = run_envsolve(data, turns_key, gap, args.repeat)
            other = theirs[f"{turns_key}/{fill}"]
            c = compare(ours, other["speakers"], words, data[turns_key])
            print(
                f"\n[{turns_key} turns] envsolve max_gap={gap} vs whisperx fill_nearest={fill}\n"
                f"  whisperx assign_word_speakers {other['seconds']:.3f} s; envsolve attribute {whole:.3f} s "
                f"(ratio {other['seconds'] / whole:.1f}x), its core assign_speakers {core:.3f} s "
                f"(ratio {other['seconds'] / core:.1f}x)\n"
                f"  both define {c['both']}, differ {c['differ']} = {c['tie']} exact ties (equal overlap, "
                f"same turn start) + {c['zero_length']} zero-length + {c['gap']} gap words by nearest rule\n"
                f"  only envsolve defines {c['only_envsolve']} gap words (within {gap} s of a turn) + "
                f"{c['only_zero']} zero-length words; only whisperx defines {c['only_whisperx']}"
            )


if __name__ == "__main__":
    main()
