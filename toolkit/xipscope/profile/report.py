"""`write_report(profile_dir)`: the analyses of one profile written as files a person opens (report.html with PNG
plots) and files a program reads (summary.json, CSV tables, speedscope JSON and collapsed stacks).

meta.json keys read here (all optional): `elf` (path of the image that ran: absolute, or relative to the profile
directory, else to the working directory), `elf_sha256` (checked against the ELF used), `map` (memory map name or
TOML path), `target`, `registers` (name -> value at the run's last halt: lets the LR/SC check name the lock), `truth` (the
file beside it with a model's exact counts: the report then sets the samples beside them), `halted_target` (the
halted share as a paced model saw it); every other key is shown in the report's metadata table as it is.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from . import analysis as an

if TYPE_CHECKING:
    from ..chip.memory_map import MemoryMap
    from ..elf.symbols import SymbolIndex

REPORT_DIR = "report"


def write_report(profile_dir: str | Path, symbols: "SymbolIndex | str | Path | None" = None,
                 memory_map: "MemoryMap | str | Path | None" = None, out: str | Path | None = None,
                 registers: dict | None = None, top: int = 15) -> Path:
    """Analyse PROFILE_DIR and write its report into `out` (default PROFILE_DIR/report); returns report.html's path.

    `registers` (read at the end of the run; default meta.json's `registers`) let the livelock check name the lock.
    """
    from ..files import output_dir
    from . import export, plots

    profile = an.load_profile(profile_dir, symbols, memory_map)
    # never written through a symlink that leaves the directory (a profile mailed in may hold DIR/report -> ~)
    out = output_dir(out) if out is not None else output_dir(Path(profile_dir) / REPORT_DIR, base=profile_dir)
    frame = profile.samples

    by_region = an.share_by_region(frame)
    by_map_region = an.share_by_map_region(frame)
    by_function = an.share_by_function(frame)
    by_line = an.share_by_line(frame)
    rate = an.hit_rate(frame)
    over_time = an.hit_rate_over_time(frame)
    intrusion = an.intrusiveness(frame)
    attribution = an.attribute_misses(frame, top=top) if rate["accesses"] else None
    if registers is None and isinstance(profile.meta.get("registers"), dict):
        registers = profile.meta["registers"]
    livelock = an.detect_lrsc_livelock(frame, profile.elf_path, profile.symbols, profile.memory_map, registers)
    truth_json = _truth_json(profile)
    truth = an.versus_truth(profile.samples, truth_json, profile.memory_map) if truth_json is not None else None
    atomics = emulated_atomics(profile.meta, truth_json)

    tables = {"by_region": by_region, "by_map_region": by_map_region, "by_function": by_function, "by_line": by_line, "over_time": over_time}
    if attribution is not None and len(attribution):
        tables["miss_attribution"] = attribution
    if truth is not None:
        tables["truth_by_function"], tables["truth_by_region"] = truth["functions"], truth["regions"]
    export.write_csv(tables, out)
    stacks = export.has_stacks(frame)
    if stacks:
        export.write_stacks(frame, profile.symbols, out, name=str(profile.meta.get("target", profile.directory)))

    figures = {"top_functions.png": plots.plot_top_functions(by_function, out / "top_functions.png", top=top).name,
               "regions_over_time.png": plots.plot_regions_over_time(over_time, out / "regions_over_time.png").name}
    if rate["accesses"]:
        plots.plot_hit_rate_over_time(over_time, out / "hit_rate_over_time.png", rate["hit_rate"])
        figures["hit_rate_over_time.png"] = "hit_rate_over_time.png"

    summary = {"profile": str(profile.directory), "meta": profile.meta, "memory_map": profile.memory_map.name,
               "elf": str(profile.elf_path) if profile.elf_path else None, "hit_rate": rate,
               "intrusiveness": intrusion, "notes": profile.notes,
               "livelock": livelock.to_json() if livelock else None,
               "by_region": _records(by_region), "top_functions": _records(by_function.head(top)),
               "miss_attribution": _records(attribution) if attribution is not None and len(attribution) else None,
               "emulated_atomics": atomics,
               "truth": {**{k: v for k, v in truth.items() if k not in ("functions", "regions")},
                         "functions": _records(truth["functions"]), "regions": _records(truth["regions"])}
               if truth is not None else None}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default) + "\n")
    path = out / "report.html"
    path.write_text(render_html(profile, summary, tables, attribution, livelock, figures, stacks, top))
    return path


def _truth_json(profile) -> dict | None:
    """The model's exact counts at the run's start and end, when the run was on a model that saved them (meta `truth`)."""
    name = profile.meta.get("truth")
    if not name:
        return None
    from ..errors import FormatError
    from ..files import read_regular_text
    from .store import MAX_META_BYTES
    return json.loads(read_regular_text(Path(name).name, "the model's truth", base=profile.directory,
                                        max_size=MAX_META_BYTES, why="a profile's truth.json may have",
                                        error=FormatError))


def emulated_atomics(meta: dict, truth_json: dict | None) -> dict | None:
    """The cost of a kernel's emulated atomics over the run: how many (meta `emulated_atomics`, the kernel's own
    counter, read on a board as on the twin) and, on the twin, the exact count and the share of cycles from their
    trap entries to their returns (truth.json's `emulated_atomics`, start to end). None when neither is known."""
    counted = meta.get("emulated_atomics") if isinstance(meta.get("emulated_atomics"), dict) else None
    model = None
    if truth_json is not None:
        before, after = truth_json.get("before", {}), truth_json.get("after", {})
        b, a = before.get("emulated_atomics"), after.get("emulated_atomics")
        if a and b and (counted is not None or a["traps"] > b["traps"]):
            total = after["cycles"] - before["cycles"]
            cycles = a["cycles"] - b["cycles"]
            model = {"traps": a["traps"] - b["traps"], "cycles": cycles, "share": cycles / total if total else None}
    if counted is None and model is None:
        return None
    return {"count": counted["count"] if counted else None, "counter": counted["counter"] if counted else None,
            "model": model}


def emulated_atomics_text(atomics: dict) -> str:
    """One line: `emulated atomics: N = 15,234 traps (amo_emulated_count); X = 3.9% of cycles ...`."""
    parts = []
    if atomics["count"] is not None:
        parts.append(f"N = {atomics['count']:,} AMOs trapped (mcause 7) and emulated by the kernel "
                     f"({atomics['counter']})")
    model = atomics["model"]
    if model is not None:
        parts.append(f"the model counted {model['traps']:,}, taking X = {_pct(model['share'])} of the cycles "
                     f"({model['cycles']:,}) from their trap entries to their returns")
    else:
        parts.append("their cycles are not known from samples (the twin counts them exactly: `monitor stats-json`, "
                     "emulated_atomics)")
    return "emulated atomics: " + "; ".join(parts)


def _json_default(value):
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def summary_text(summary: dict, top: int = 8) -> str:
    """The few lines a terminal shows after a profile: where the time went, the XIP hit rate, how intrusive it was."""
    lines = [f"{summary['intrusiveness']['samples']} samples, memory map {summary['memory_map']}"]
    for record in summary["top_functions"][:top]:
        regions = [k for k in an.CATEGORIES if record.get(k)]
        where = max(regions, key=lambda k: record[k]) if regions else ""
        lines.append(f"  {_pct(record['share']):>6}  {record['function']:<32} {where}")
    shares = [f"{r['category']} {_pct(r['share'])}" for r in summary["by_region"] if r["samples"]]
    lines.append("regions: " + ", ".join(shares))
    rate = summary["hit_rate"]
    if rate["hit_rate"] is not None:
        lines.append(f"XIP hit rate {_pct(rate['hit_rate'])}: {rate['hits']:,} hits of {rate['accesses']:,} accesses")
    halted = summary["intrusiveness"]
    seen = summary["meta"].get("halted_target")
    if seen and seen.get("share") is not None:
        lines.append(f"halted {_pct(seen['share'])} of the run as the target saw it ({seen['halted_s']:.2f} s held "
                     f"halted against {seen['cycles']:,} cycles run at its clock); host time: "
                     + (f"{halted['halted_ns_median'] / 1000:.0f} us per sample (median), "
                        f"{_pct(halted.get('halted_share'))} of the run" if halted.get("halted_ns_median") is not None
                        else "n/a"))
    elif halted.get("halted_ns_median") is not None:
        lines.append(f"halted {halted['halted_ns_median'] / 1000:.0f} us per sample (median), "
                     f"{_pct(halted.get('halted_share'))} of the run")
    meta = summary["meta"]
    if meta.get("until"):
        lines.append(f"until {meta['until']}: " + (f"not met: {meta['ended_early']}" if meta.get("ended_early")
                                                   else str(meta.get("stop_reason"))))
    truth = summary.get("truth")
    if truth:
        lines.append(f"against the model's truth ({truth['model']}, {truth['cycles']:,} cycles): total variation "
                     f"distance {truth['tv_functions']:.3f} by function, {truth['tv_regions']:.3f} by region"
                     + (" (samples weighted by cycles)" if truth["weighted"] else ""))
        lines.append(f"  {'sampled':>7} {'truth':>7}  {'hit rate':>8} {'truth':>7}")
        for r in truth["functions"][:top]:
            lines.append(f"  {_pct(r['sampled_share']):>7} {_pct(r['true_share']):>7}  "
                         f"{_pct(r['sampled_hit_rate']):>8} {_pct(r['true_hit_rate']):>7}  {r['function']}")
        for r in truth["regions"]:
            lines.append(f"  {_pct(r['sampled_share']):>7} {_pct(r['true_share']):>7}  "
                         f"{_pct(r['sampled_hit_rate']):>8} {_pct(r['true_hit_rate']):>7}  region {r['category']}")
        rate = truth["hit_rate"]
        lines.append(f"  XIP hit rate sampled {_pct(rate['sampled'])}, truth {_pct(rate['true'])}")
    if summary.get("emulated_atomics"):
        lines.append(emulated_atomics_text(summary["emulated_atomics"]))
    if summary.get("livelock"):
        lines.append("LR/SC: " + summary["livelock"]["explanation"])
    lines += [f"note: {note}" for note in summary["notes"]]
    return "\n".join(lines)


def _records(table) -> list[dict]:
    return json.loads(table.reset_index().to_json(orient="records"))


def _pct(v) -> str:
    return "n/a" if v is None or v != v else f"{100 * v:.1f}%"


def _table_html(table, percent: tuple[str, ...] = (), rows: int | None = None) -> str:
    shown = table.head(rows) if rows else table
    formatters = {c: _pct for c in percent if c in shown.columns}
    return shown.to_html(classes="t", border=0, formatters=formatters, float_format=lambda v: f"{v:,.2f}",
                         na_rep="n/a")


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table.t{border-collapse:collapse;font-size:.85em}table.t td,table.t th{padding:2px 8px;text-align:right}
table.t th:first-child,table.t td:first-child{text-align:left}table.t tr:nth-child(even){background:#f5f5f5}
.note{background:#fff6d5;padding:.5em 1em;border-left:4px solid #e0b000}
.alert{background:#fde2e2;padding:.5em 1em;border-left:4px solid #c00}img{max-width:100%}
code{background:#f0f0f0;padding:0 3px}
svg.flame{display:block;margin:.5em 0}svg.flame text{pointer-events:none;fill:#000}
table.src{border-collapse:collapse;font-size:.8em;font-family:monospace;width:100%}
table.src td{padding:0 6px;text-align:right;white-space:nowrap;vertical-align:top}
table.src td.code{text-align:left;white-space:pre;width:100%}table.src tr.gap td{color:#999;text-align:left}
table.src tr.hot td{background:#fde2e2}table.src tr.warm td{background:#fff6d5}"""

ANNOTATED_FUNCTIONS = 3


def render_html(profile, summary, tables, attribution, livelock, figures, stacks, top) -> str:
    e = html.escape
    meta, rate, intr = profile.meta, summary["hit_rate"], summary["intrusiveness"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>xipscope report: {e(str(profile.directory))}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>xipscope profile report</h1><p>{len(profile.samples):,} samples from "
             f"<code>{e(str(meta.get('target', '?')))}</code>, symbols from <code>{e(str(summary['elf']))}</code>, "
             f"memory map <code>{e(profile.memory_map.name)}</code>.</p>"]
    if meta.get("model"):     # the sampler records whether the target said it is a model
        parts.append("<p class='note'>The target is the RP2350 twin, a model: real RV32 code on unicorn with the "
                     "XIP cache and counters modelled from the datasheet; timings use assumed miss penalties.</p>")
    for note in profile.notes:
        parts.append(f"<p class='note'>{e(note)}</p>")
    if livelock is not None:
        cls = "note" if livelock.verdict == "contention" else "alert"
        parts.append(f"<h2>LR/SC loop</h2><p class='{cls}'><b>{e(livelock.verdict)}</b>: {e(livelock.explanation)}</p>")

    if "truth_by_function" in tables:
        truth = summary["truth"]
        parts.append(f"<h2>Against the model's truth</h2><p class='note'>The twin counted every cycle and XIP access "
                     f"of the run ({truth['cycles']:,} cycles): beside each sampled share is the true share of cycles, "
                     f"beside each sampled hit rate (intervals wholly in it) the true one. Total variation distance "
                     f"from the truth: <b>{truth['tv_functions']:.3f}</b> by function, <b>{truth['tv_regions']:.3f}"
                     f"</b> by region (0 = the same distribution). XIP hit rate sampled "
                     f"{_pct(truth['hit_rate']['sampled'])}, truth {_pct(truth['hit_rate']['true'])}.</p>")
        rates = ("sampled_share", "true_share", "sampled_hit_rate", "true_hit_rate")
        parts.append(_table_html(tables["truth_by_region"], percent=rates))
        parts.append(_table_html(tables["truth_by_function"], percent=rates, rows=top))

    if summary.get("emulated_atomics"):
        parts.append(f"<h2>Emulated atomics</h2><p>{e(emulated_atomics_text(summary['emulated_atomics']))}. On the "
                     "RP2350 an AMO outside SRAM faults; a kernel that emulates it in its trap path pays a trap for "
                     "each.</p>")

    parts.append("<h2>XIP cache</h2>")
    if rate["has_counters"]:
        parts.append(f"<p>Hit rate {_pct(rate['hit_rate'])}: {rate['hits']:,} hits of {rate['accesses']:,} "
                     f"accesses ({rate['misses']:,} misses) over {rate['intervals'] - rate['unknown_intervals']:,} "
                     f"intervals between samples; {rate['unknown_intervals']:,} intervals unknown (first sample, "
                     "a counter saturated at 0xffffffff or written while sampling).</p>")
    else:
        parts.append("<p>This run read no XIP_CTRL counters (the memory map has none, or the sampler was told not "
                     "to).</p>")
    if "hit_rate_over_time.png" in figures:
        parts.append("<img src='hit_rate_over_time.png' alt='XIP hit rate over time'>")

    parts.append("<h2>By memory region</h2><p>Samples by where the pc was; the hit rate counts the intervals spent "
                 "wholly in one region (both samples there).</p>")
    parts.append(_table_html(tables["by_region"], percent=("share", "hit_rate")))
    parts.append(f"<p>By the regions of the <code>{e(profile.memory_map.name)}</code> map:</p>")
    parts.append(_table_html(tables["by_map_region"], percent=("share",)))
    parts.append("<img src='regions_over_time.png' alt='samples per region over time'>")

    parts.append("<h2>Top functions</h2><img src='top_functions.png' alt='top functions by region'>")
    parts.append(_table_html(tables["by_function"], percent=("share",), rows=top))
    if stacks:
        parts.append(_flame_html(profile))
    if attribution is not None and len(attribution):
        level = attribution.attrs.get("level", 0.9)
        parts.append(
            "<h2>XIP misses by function (statistical attribution)</h2><p>The counters count for the whole chip, so "
            "misses are attributed by non-negative least squares of each interval's misses on which functions its "
            f"two samples fell in ({attribution.attrs.get('intervals', 0):,} intervals). The low/high columns are a "
            f"{level:.0%} block-bootstrap interval over {attribution.attrs.get('blocks', 0)} stretches of the run; "
            "a wide interval means the run did not separate that function's misses from its neighbours'.</p>")
        parts.append(_table_html(_attribution_display(attribution), percent=("share of misses", "hit rate")))

    parts.append("<h2>Top source lines</h2>")
    parts.append(_table_html(tables["by_line"], percent=("share",), rows=top))
    if profile.symbols is not None:
        parts.append(_annotated_html(profile, tables["by_function"], tables["by_line"]))

    parts.append("<h2>Intrusiveness</h2>")
    parts.append(f"<p>Median halt per sample {_ns(intr['halted_ns_median'])} (95th percentile "
                 f"{_ns(intr['halted_ns_p95'])}); the target was halted for {_pct(intr['halted_share'])} of the "
                 f"{intr['duration_s']:.3g} s run; {_rate(intr['rate_hz'])}.</p>")

    files = ["summary.json", "by_region.csv", "by_map_region.csv", "by_function.csv", "by_line.csv",
             "over_time.csv"]
    if attribution is not None and len(attribution):
        files.append("miss_attribution.csv")
    if "truth_by_function" in tables:
        files += ["truth_by_function.csv", "truth_by_region.csv"]
    if stacks:
        files += ["profile.speedscope.json (open at speedscope.app)", "stacks.collapsed (flamegraph.pl, inferno)"]
    parts.append("<h2>Files</h2><ul>" + "".join(f"<li>{e(f)}</li>" for f in files) + "</ul>")
    parts.append("<h2>Run metadata (meta.json)</h2><table class='t'>" + "".join(
        f"<tr><td>{e(str(k))}</td><td>{e(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in sorted(meta.items())) + "</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _flame_html(profile) -> str:
    """The flame graph of the sampled stacks, drawn from the same collapsed stacks as stacks.collapsed."""
    from .export import collapsed_stacks
    from .flame import flame_svg

    svg = flame_svg(collapsed_stacks(profile.samples, profile.symbols))
    return ("<h2>Flame graph</h2><p>The sampled stacks (stacks.collapsed): each frame sits on its caller and is as "
            "wide as the samples taken in it and its callees (counted, not cycle-weighted); callees side by side in "
            "name order. Hover a frame for its count.</p>" + svg)


def _annotated_html(profile, by_function, by_line, functions: int = ANNOTATED_FUNCTIONS) -> str:
    """The source of the hottest functions, each line with its samples and attributed XIP misses."""
    from .annotate import annotate_function, source_bases

    e = html.escape
    names = [f for f in by_function.index if f != an.NO_SYMBOL][:functions]
    bases = source_bases(profile.directory, profile.elf_path)
    has_misses = not by_line["misses"].isna().all()
    parts = ["<h2>Annotated source</h2><p>The hottest functions' source, as <code>perf annotate</code> shows it: each "
             "line with the samples whose pc fell on its code and their share of the run"
             + (", and the XIP misses attributed to it (each interval's misses split half to the line of the sample "
                "before it and half to the one after)" if has_misses else "") + ".</p>"]
    for name in names:
        found = annotate_function(by_line, name, profile.symbols, bases)
        where = (f" in <code>{e(str(found.path))}</code>" if found.path else
                 f"; source <code>{e(str(found.file))}</code> not found (looked under the working directory, the "
                 "profile and the ELF's directories)" if found.file else "; the ELF has no line table for it")
        parts.append(f"<h3 id='src-{e(name)}'>{e(name)}</h3><p>{found.samples:,} samples{where}.</p>")
        if not found.lines and not found.inlined:
            continue
        peak = max([ln.samples for ln in found.lines + found.inlined if ln is not None] + [1])
        rows = [f"<table class='src' data-function='{e(name, quote=True)}'><tr><th>samples</th><th>share</th>"
                + ("<th>misses</th>" if has_misses else "") + "<th>line</th><th></th></tr>"]

        def row(ln) -> str:
            if ln is None:
                return f"<tr class='gap'><td colspan='{5 if has_misses else 4}'>...</td></tr>"
            heat = "hot" if ln.samples >= peak / 2 else "warm" if ln.samples else ""
            return (f"<tr class='{heat}' data-file='{e(ln.file, quote=True)}' data-line='{ln.line}' "
                    f"data-samples='{ln.samples}'><td>{ln.samples or ''}</td><td>{_pct(ln.share) if ln.samples else ''}"
                    "</td>" + (f"<td>{'' if ln.misses != ln.misses or not ln.samples else f'{ln.misses:,.0f}'}</td>"
                               if has_misses else "")
                    + f"<td>{ln.line}</td><td class='code'>{e(ln.text) if ln.text is not None else ''}</td></tr>")

        rows += [row(ln) for ln in found.lines]
        if found.inlined:
            rows.append(f"<tr class='gap'><td colspan='{5 if has_misses else 4}'>inlined from other files:</td></tr>")
            rows += [row(ln).replace(f"<td>{ln.line}</td>", f"<td>{e(Path(ln.file).name)}:{ln.line}</td>")
                     for ln in found.inlined]
        parts.append("".join(rows) + "</table>")
    return "\n".join(parts)


def _attribution_display(table):
    """The attribution with each estimate and its interval in one cell, so the table fits a page."""
    import pandas as pd

    def span(v, lo, hi, fmt):
        return f"{fmt(v)} ({fmt(lo)}-{fmt(hi)})"

    return pd.DataFrame({
        "samples": table["samples"],
        "misses per interval (interval)": [span(*r, lambda x: f"{x:,.1f}") for r in zip(
            table["misses_per_interval"], table["misses_per_interval_low"], table["misses_per_interval_high"])],
        "misses (interval)": [span(*r, lambda x: f"{x:,.0f}") for r in zip(
            table["misses"], table["misses_low"], table["misses_high"])],
        "share of misses": table["miss_share"],
        "hit rate": table["hit_rate"]}, index=table.index)


def _ns(v) -> str:
    if v is None:
        return "n/a"
    return f"{v / 1000:.1f} us" if v >= 1000 else f"{v:.0f} ns"


def _rate(v) -> str:
    return "sample rate unknown" if not v else f"{v:,.0f} samples/s"
