"""Every text rendering for the terminal, in one place: plans, findings, probes, matrices, finding codes and
the run summary. JSON forms live on the objects themselves (to_json); this module only writes words.

Types are imported for checking only, so a command pays for no module it does not render.

Every line goes out through `envsolve.terminal.printable` (`_join`): snapshot fields, GPU names, paths and input
file names come from files other people wrote, and an escape sequence or a newline in one of them must not
reach the terminal as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from envsolve.terminal import printable, printable_lines

if TYPE_CHECKING:
    from envsolve.derive import DriftReport
    from envsolve.pipeline.cluster import ClusterRun
    from envsolve.pipeline.runner import FileResult, Runner
    from envsolve.resolver.doctor import DoctorReport
    from envsolve.resolver.host import Host
    from envsolve.resolver.matrices import Matrix
    from envsolve.resolver.plan import Plan
    from envsolve.resolver.probe import Probe


def table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None, indent: str = "  ") -> list[str]:
    """Left-aligned columns; the last column is not padded."""
    all_rows = [list(header)] if header else []
    all_rows += [[printable(c) for c in r] for r in rows]
    if not all_rows:
        return []
    widths = [max(len(r[i]) for r in all_rows if i < len(r)) for i in range(len(all_rows[0]))]
    out = []
    for n, row in enumerate(all_rows):
        cells = [c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        out.append(indent + "  ".join(cells).rstrip())
        if header and n == 0:
            out.append(indent + "  ".join("-" * w for w in widths))
    return out


def _join(lines: Iterable[str]) -> str:
    """The lines of a report, each one kept to one line with its control characters escaped."""
    return "\n".join(printable(line) for line in lines)


def driver_text(host: Host) -> str:
    """'driver 550.54.15 (CUDA 12.4)', 'no NVIDIA driver reachable' or 'driver unknown'."""
    if host.driver:
        return f"driver {host.driver.version} (CUDA {host.driver.cuda or 'unknown'})"
    return "no NVIDIA driver reachable" if host.driver_known else "driver unknown"


def describe_host(host: Host) -> str:
    """One line: architecture, Python, platform, glibc, driver and GPUs."""
    parts = [host.os.arch or "arch ?", f"Python {host.python or '?'}"]
    if host.platform:
        parts.append(host.platform)
    if host.os.glibc:
        parts.append(f"glibc {host.os.glibc}")
    parts.append(driver_text(host))
    for gpu in host.gpus or ():
        parts.append(f"{gpu.name} (cc {gpu.compute_capability or '?'})")
    return printable(", ".join(parts))


def format_plan(plan: Plan) -> str:
    """`envsolve plan`: packages, where each consumer finds its libraries, image, environment, decisions."""
    lines = [f"envsolve plan: {plan.request.workload} for {describe_host(plan.host)}",
             f"Pathway {plan.pathway}, {_devices(plan)}, Python {plan.python}, compute type {plan.compute_type}",
             "", "Packages:"]
    lines += table([(p.requirement, p.index) for p in plan.pins])
    if plan.libraries:
        lines += ["", "Native libraries (where each consumer's loader finds them):"]
        lines += table([(lib["consumer"], lib["library"],
                         f"{lib['from']} {lib['package'] or lib['path']} {lib['version']}".strip(),
                         f"via {lib['found_via']}") for lib in plan.libraries])
    lines += ["", f"Base image: {plan.base_image or '(none fits)'}"]
    if plan.env:
        lines += ["Environment:"] + [f"  {k}={v}" for k, v in plan.env.items()]
    lines += ["", "Decisions:"]
    for d in plan.decisions:
        lines.append(f"  {d.subject} {d.chosen}  [{d.rule}] {d.why}")
        for r in d.rejected[:3]:
            lines.append(f"    not {r['version']}: [{r['code']}] {r['why']}")
        if d.source:
            lines.append(f"    source: {shorten(d.source)}")
    if plan.warnings:
        lines += ["", "Warnings:"] + [f"  [{w.code}] {w.subject}: {w.message}" for w in plan.warnings]
    if plan.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in plan.notes]
    return _join(lines)


def _devices(plan: Plan) -> str:
    """'GPU (CUDA)', 'CPU', or per component when they differ: 'ctranslate2 on CPU, torch on GPU'."""
    if len(set(plan.devices.values())) > 1:
        return ", ".join(f"{name} on {'GPU' if device == 'cuda' else 'CPU'}" for name, device in plan.devices.items())
    return "GPU (CUDA)" if plan.gpu else "CPU"


def shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_findings(host: Host, report: DoctorReport) -> str:
    """`envsolve doctor`: what was assumed, each finding with its evidence, fix and code, then what could not
    be checked. "Healthy" is said only when every rule could be decided."""
    lines = [f"envsolve doctor: {describe_host(host)}"]
    lines += [f"Assumed: {note}" for note in report.notes]
    if not report.findings:
        lines.append("Healthy: every rule holds for what is installed." if report.complete else
                     f"No problems found in what could be checked, but {len(report.unknown)} check(s) could not be "
                     "made (below): this is not a clean bill of health.")
    for f in report.findings:
        lines += ["", f"{f.severity.upper()} [{f.code}] {f.subject}: {f.message}"]
        lines += [f"  evidence: {e}" for e in f.evidence]
        if f.fix:
            lines.append(f"  fix: {f.fix}")
        lines.append(f"  explain: envsolve explain {f.code}")
    if report.unknown:
        lines += ["", f"Not checked ({len(report.unknown)}): the snapshot does not say enough."]
        lines += [f"  - {u}" for u in report.unknown[:10]]
        if len(report.unknown) > 10:
            lines.append(f"  ... and {len(report.unknown) - 10} more (--json lists them all)")
    return _join(lines)


def format_matrix_list(matrices: Iterable[Matrix[Any]]) -> str:
    """`envsolve matrices`: every matrix with its title and size."""
    return "\n".join(table([(m.name, m.title, str(len(m))) for m in matrices], ("matrix", "title", "rows"), indent=""))


def format_matrix(matrix: Matrix[Any], columns: Sequence[str] | None = None) -> str:
    """`envsolve matrices NAME`: the rows as a table (the first nine fields unless `columns` are given)."""
    fields: list[str] = list(columns or [])
    if not fields:
        for row in matrix.rows:
            for key in row:
                if key not in fields and key not in ("source", "checked", "note"):
                    fields.append(key)
        fields = fields[:9]
    rows = [[_cell(row.get(f)) for f in fields] for row in matrix.rows]
    lines = [f"{matrix.title} ({len(matrix)} rows; matrices/{matrix.name}.toml)", ""]
    lines += table(rows, fields)
    lines += ["", "Every row names its source and how it was checked: envsolve matrices "
              f"{matrix.name} --json shows them."]
    return _join(lines)


_QUIET_FIELDS = ("evidence", "source", "checked", "note", "artifact", "sha256", "index_source", "index_note")


def format_matrix_drift(report: DriftReport) -> str:
    """`envsolve matrices verify|refresh`: per matrix what re-deriving it found, what that means, and the cost."""
    lines = [f"envsolve matrices {report.mode}: index {report.index} ({report.index_from}); "
             f"matrices in {report.folder}"]
    for m in report.matrices:
        lines.append("")
        if m.skipped:
            lines.append(f"{m.name}: not checked: {m.skipped}")
            continue
        counts = f"{len(m.added)} new, {len(m.removed)} gone, {len(m.changed)} changed"
        state = ("rewritten" if m.written else "differs") if m.drifted else "up to date"
        if not m.drifted and m.written:
            state = "up to date (file rewritten: header or layout)"
        lines.append(f"{m.name} ({m.rows} rows): {state}" + (f": {counts}" if m.drifted else ""))
        for added in m.added:
            lines.append(f"  + {_key_text(m.key, added)}: {_facts(added, m.key)}")
        for row in m.removed:
            lines.append(f"  - {_key_text(m.key, row)}")
        for change in m.changed:
            facts = [f for f in change.fields if f not in _QUIET_FIELDS]
            quiet = [f for f in change.fields if f in _QUIET_FIELDS]
            parts = [f"{f} {_value(change.old.get(f))} -> {_value(change.new.get(f))}" for f in facts]
            if quiet:
                parts.append(f"({', '.join(quiet)} updated)")
            lines.append(f"  ~ {_key_text(m.key, change.new)}: {'; '.join(parts)}")
        lines += [f"  means: {text}" for text in m.meanings]
        lines += [f"  note: {text}" for text in m.notes]
    drifted = report.drifted
    lines.append("")
    if not drifted:
        lines.append("No drift: the committed matrices say what the index and the wheels say.")
    elif report.mode == "verify":
        names = " ".join(m.name for m in drifted)
        lines.append(f"Drift in {len(drifted)} of {len(report.matrices)} matrices. After reading what changed, "
                     f"rewrite them with `envsolve matrices refresh {names}` and commit.")
    else:
        lines.append(f"Rewrote {', '.join(f'{m.name}.toml' for m in drifted if m.written)}: review the diff, "
                     "then commit.")
    lines.append(f"Read {report.network_bytes / 1e6:.1f} MB from the network in {report.requests} request(s) in "
                 f"{report.seconds:.1f} s (cache: {report.cache}).")
    return _join(lines)


def _key_text(key: Sequence[str], row: Mapping[str, Any]) -> str:
    return " ".join(str(row.get(k)) for k in key)


def _facts(row: Mapping[str, Any], key: Sequence[str] = (), limit: int = 8) -> str:
    shown = [(k, v) for k, v in row.items() if k not in _QUIET_FIELDS and k not in key][:limit]
    return ", ".join(f"{k} {_value(v)}" for k, v in shown)


def _value(value: Any, limit: int = 90) -> str:
    text = "(absent)" if value is None else _cell(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return str(value)


def format_code_list(codes: Mapping[str, Mapping[str, Any]]) -> str:
    """`envsolve explain`: every finding code with its title."""
    return "\n".join(table([(code, str(entry["title"])) for code, entry in sorted(codes.items())], ("code", "title"),
                           indent=""))


def format_code(code: str, entry: Mapping[str, Any]) -> str:
    """`envsolve explain CODE`: explanation, symptoms, ways out and sources."""
    lines = [f"{code}: {entry['title']}", "", str(entry["explanation"])]
    if entry.get("symptoms"):
        lines += ["", "Symptoms:"] + [f"  {s}" for s in entry["symptoms"]]
    if entry.get("ways_out"):
        lines += ["", "Ways out:"] + [f"  - {w}" for w in entry["ways_out"]]
    lines += ["", "Sources:"] + [f"  {s}" for s in entry["sources"]]
    return printable_lines("\n".join(lines))


def format_probe(result: Probe) -> str:
    """`envsolve probe`: what this host has, and what each native consumer's loader picks."""
    from envsolve.resolver.families import FAMILIES

    host = result.host
    lines = [f"envsolve probe: {describe_host(host)}", ""]
    lines.append("GPU and driver:")
    lines.append(f"  {driver_text(host)}")
    for gpu in host.gpus or ():
        memory = f", {gpu.memory_mib} MiB" if gpu.memory_mib is not None else ""
        lines.append(f"  {gpu.name}: compute capability {gpu.compute_capability or '?'}{memory}")
    if host.cuda_toolkits:
        lines += ["", "CUDA toolkits:"] + [f"  {t.version} at {t.path}" for t in host.cuda_toolkits]
    lines += ["", "Libraries (where they live):"]
    if host.libraries:
        lines += table([(lib.soname or lib.name, lib.version or "?", lib.origin, lib.path or "?")
                        for lib in host.libraries])
    else:
        lines.append("  none of cuDNN, cuBLAS, cudart, NCCL or FFmpeg found" if host.libraries is not None
                     else "  not scanned")
    lines += ["", "What each consumer's loader picks:"]
    if host.loader:
        lines += table([(x.consumer, x.needs, x.how, x.resolved or "NOT FOUND", x.via or "") for x in host.loader])
    else:
        lines.append("  no native consumers (ctranslate2, torch, torchcodec) installed")
    if host.packages is not None:
        # The families the rulebook has rules for, onnxruntime (it shadows onnxruntime-gpu) and every nvidia-* wheel.
        shown = {name: version or "(version unknown)" for name, version in sorted(host.packages.items())
                 if name in FAMILIES or name == "onnxruntime" or name.startswith("nvidia-")}
        lines += ["", f"Packages ({len(host.packages)} installed; the ones the rulebook checks):"]
        lines += table([(name, version) for name, version in shown.items()]) or ["  none of them"]
    lines += ["", f"Platform: {host.platform or '?'}; Python {host.python or '?'}; glibc {host.os.glibc or '?'}; "
              f"{host.os.arch or '?'}; {host.os.distro or '?'}"]
    avutil = next((lib for lib in host.libraries or () if lib.name == "avutil"), None)
    lines.append(f"FFmpeg: {host.ffmpeg or 'no ffmpeg executable'}"
                 + (f"; {avutil.soname} at {avutil.path}" if avutil else "; no libavutil found"))
    if host.env:
        lines += ["", "Environment (kept variables only):"] + [f"  {k}={_clip(v)}" for k, v in host.env.items()]
    if host.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in host.notes]
    lines += ["", "Snapshot: envsolve probe --json -o host.json; then envsolve plan --host host.json anywhere."]
    return _join(lines)


def _clip(value: str, limit: int = 300) -> str:
    return value if len(value) <= limit else value[:limit] + f"... ({len(value)} characters)"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_cluster_summary(run: ClusterRun) -> str:
    """`envsolve run --ray`: the files as a local run lists them, then each worker's share and the throughput."""
    results = run.results
    lines = ["", f"Summary (Ray at {run.address})"]
    lines += _file_rows(results)
    if run.workers:
        lines += ["", "Workers (busy s includes each worker's one model load)"]
        lines += table([(w.worker, str(w.files), _seconds(w.audio_s or None), _seconds(w.busy_s or None),
                         str(w.lost)) for w in run.workers.values()],
                       ("worker", "files", "audio s", "busy s", "lost"), indent="  ")
    audio = sum(r.duration for r in results if r.status == "ok")
    if audio and run.wall_s > 0:
        lines += ["", f"Throughput: {audio:.1f} s of audio in {run.wall_s:.1f} s wall, {audio / run.wall_s:.2f}x "
                  "realtime for the whole batch"]
    if run.retried:
        lines += [f"Sent to another worker after a worker died: {', '.join(run.retried)}"]
    return _join(lines + _batch_tail(results, run.output_dir))


def format_run_summary(results: list[FileResult], runner: Runner) -> str:
    """`envsolve run`: one row per file, then per-stage performance, then the errors in full."""
    lines = ["", "Summary"]
    lines += _file_rows(results)
    done = [r for r in results if r.status == "ok"]
    if done:
        model = runner.model
        where = f"{model.name} on {model.device} ({model.compute_type})" if model else "no model"
        lines += ["", f"Performance (model {where}, loaded in {runner.model_load_seconds:.2f} s; RTF = processing "
                  "seconds per audio second; RSS is the process peak so far)"]
        stages = [s for s in ("decode", "asr", "diarize", "attribute", "write") if any(s in r.stages for r in done)]
        perf = [(r.source, *(_seconds(r.stages.get(s)) for s in stages), _seconds(r.seconds),
                 "-" if r.rtf is None else f"{r.rtf:.3f}", f"{r.peak_rss_mb:.0f}",
                 "-" if r.peak_vram_mb is None else f"{r.peak_vram_mb:.0f}") for r in done]
        lines += table(perf, ("file", *(f"{s} s" for s in stages), "total s", "RTF", "peak RSS MB", "peak VRAM MB"),
                       indent="  ")
    return _join(lines + _batch_tail(results, runner.options.output_dir))


def _file_rows(results: list[FileResult]) -> list[str]:
    rows = [(r.source, r.status, _seconds(r.duration or None), _seconds(r.seconds or None),
             "-" if r.rtf is None else f"{r.rtf:.3f}", r.reference or "; ".join(r.notes)) for r in results]
    return table(rows, ("file", "status", "audio s", "time s", "RTF", "note"), indent="  ")


def _batch_tail(results: list[FileResult], output_dir: object) -> list[str]:
    """The errors in full, then the one-line count (local and Ray runs end alike)."""
    lines: list[str] = []
    failed = [r for r in results if r.status == "failed"]
    if failed:
        lines += ["", f"{len(failed)} of {len(results)} file(s) failed:"]
        lines += [f"  {r.source}: {r.error}" for r in failed]
    ok = sum(r.status == "ok" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    return [*lines, "", f"{ok} transcribed, {skipped} skipped, {len(failed)} failed; outputs in {output_dir}"]
