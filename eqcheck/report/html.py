"""The HTML report: one self-contained page (inline CSS and SVG, nothing loaded) rendered from a result."""
from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from string import Template
from typing import TYPE_CHECKING

from eqcheck.report.inert import html_text as escape
from eqcheck.report.html_chart import LogScale, heat_color, heat_map, layer_chart
from eqcheck.report.text import action_text, fmt, largest_error, passes, verdict_line
from eqcheck.result import ElementResult, LayerResult, VerificationResult

if TYPE_CHECKING:
    from eqcheck.checks import ModelOutcome
    from eqcheck.gate import CheckVerdict

CHOSEN = {"auto": "chosen automatically", "auto-default": "no action explains it: the default for its shape",
          "declared": "declared", "given": "given",
          "found": "found from the data: its channels' representation, named by its irreps",
          "layers": "no action explains it: what its last layer computes from exact inputs"}


def _template() -> Template:
    return Template(files("eqcheck.report").joinpath("templates/report.html").read_text(encoding="utf-8"))


def render(result: VerificationResult) -> str:
    """The complete HTML document for ``result``; every name in it is escaped."""
    word = "PASS" if result.passed else "FAIL"
    return _template().substitute(
        title=escape(f"eqcheck: {word} {result.run.model} ({result.run.group})"),
        version=escape(result.run.eqcheck_version),
        body=_body(result),
    )


def _body(result: VerificationResult) -> str:
    """The sections of one result's report."""
    sections = [_header(result), _diagnoses(result), _run(result),
                *(_elements(result, output) for output in result.outputs), _layers(result)]
    return "\n".join(s for s in sections if s)


def render_check(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict) -> str:
    """One page for ``eqcheck check``: the gate's verdict, a row per listed model linking to its report
    below (each report's element ids prefixed ``mK-``, so that the page's ids stay unique)."""
    from eqcheck.gate import KNOWN_FAILURE, PASSED
    from eqcheck.report.summary import STATUS_LABELS, check_verdict_line

    word, line = check_verdict_line(verdict).split("  ", 1)
    rows, articles = [], []
    for k, (outcome, status) in enumerate(zip(outcomes, verdict.statuses)):
        result, anchor = outcome.result, f"m{k}"
        bad = status not in (PASSED, KNOWN_FAILURE)
        error = fmt(largest_error(result)) if result else "-"
        first = _breakable(result.first_failing_layer) if result and result.first_failing_layer else "-"
        rows.append(f'<tr><td><a href="#{anchor}">{escape(outcome.entry.name)}</a></td><td>{escape(outcome.group)}'
                    f'</td><td><span class="badge {"fail" if bad else "ok"}">{escape(STATUS_LABELS[status])}</span></td>'
                    f'<td class="num">{error}</td><td>{first}</td></tr>')
        body = (_body(result) if result is not None else
                f'<section><p class="caption">could not be checked: {escape(outcome.error or "")}</p></section>')
        articles.append(f'<article id="{anchor}">' + body.replace(' id="', f' id="{anchor}-') + "</article>")
    header = (f'<header><div class="brand">eqcheck &middot; check</div><h1>{len(outcomes)} listed '
              f'model{"s" if len(outcomes) != 1 else ""}</h1><div class="verdict {"pass" if verdict.passed else "fail"}">'
              f'<span class="word">{escape(word)}</span><span class="line">{escape(line)}</span></div></header>'
              '<section id="models"><h2>Models</h2><table><thead><tr><th>model</th><th>group</th><th>status</th>'
              '<th class="num">max rel error</th><th>first failing layer</th></tr></thead><tbody>\n'
              + "\n".join(rows) + "</tbody></table></section>")
    version = next((o.result.run.eqcheck_version for o in outcomes if o.result is not None), "")
    return _template().substitute(title=escape(f"eqcheck check: {word}"), version=escape(version),
                                  body="\n".join([header, *articles]))


def _card(key: str, value: str, sub: str = "", bad: bool = False) -> str:
    return (f'<div class="card"><div class="k">{key}</div><div class="v{" bad" if bad else ""}">{value}</div>'
            f'<div class="s">{sub}</div></div>')


def _breakable(name: str) -> str:
    """A layer name that may wrap after each ``/``."""
    return f'<span class="mono">{escape(name).replace("/", "/<wbr>")}</span>'


def _header(result: VerificationResult) -> str:
    run, output = result.run, result.output  # the headline output: the first that fails
    word, cls = ("PASS", "pass") if result.passed else ("FAIL", "fail")
    line = verdict_line(result).split("  ", 1)[-1]
    failing = [e for o in result.outputs for e in o.elements if not e.passed]
    total = sum(len(o.elements) for o in result.outputs)
    first = next((layer for layer in result.layers if layer.name == result.first_failing_layer), None)
    tolerances = f"tol {fmt(result.tolerance)}"
    if any(not e.exact for e in output.elements):
        tolerances += f", interpolated {fmt(result.approximate_tolerance)}"
    cards = [
        _card("largest output error", fmt(largest_error(result)), tolerances, bad=not result.passed),
        _card("elements failing", f"{len(failing)} of {total}",
              ", ".join(escape(e.element) for e in failing[:6]) or "none", bad=bool(failing)),
        _card("first failing layer", _breakable(first.name) if first else "none",
              escape(first.op) if first else f"{len(result.layers)} layers checked", bad=first is not None),
        _card("run", f"{result.elapsed_s:.1f} s", passes(run.forward_passes)
              + (f", {run.samples} samples" if _samples_used(run.group) else "")),
    ]
    return (f'<header><div class="brand">eqcheck &middot; equivariance report</div>'
            f'<h1>{escape(run.model)} <span class="group">under {escape(run.group)}</span></h1>'
            f'<div class="verdict {cls}"><span class="word">{word}</span>'
            f'<span class="line">{escape(line)}</span></div>'
            f'<div class="cards">{"".join(cards)}</div></header>')


def _diagnoses(result: VerificationResult) -> str:
    causes = [d for d in result.diagnoses if d.severity == "cause"]
    notes = [d for d in result.diagnoses if d.severity != "cause"]
    if not (causes or notes or result.run.notes):
        return ""
    items = [f'<div class="diag"><span class="code">{escape(d.code)}</span>{escape(d.message)}</div>'
             for d in causes]
    items += [f'<div class="diag note"><span class="code">{escape(d.code)}</span>{escape(d.message)}</div>'
              for d in notes]
    items += [f'<div class="diag note">{escape(note)}</div>' for note in result.run.notes]
    title = "Why it fails" if causes else "Notes"
    return f'<section id="diagnoses"><h2>{title}</h2>\n' + "\n".join(items) + "</section>"


def _status(passed: bool, nonfinite: bool = False) -> str:
    if nonfinite:
        return '<span class="badge fail">NaN/Inf</span>'
    return '<span class="badge ok">ok</span>' if passed else '<span class="badge fail">FAIL</span>'


def _bar(element: ElementResult, tolerance: float, scale: LogScale) -> str:
    """The error on the table's log scale, with the element's tolerance as a tick."""
    width = 100 * scale.fraction(element.rel_error)
    return (f'<div class="bar"><span style="width:{width:.1f}%;background:{heat_color(element.rel_error, tolerance)}">'
            f'</span><i style="left:{100 * scale.fraction(tolerance):.1f}%"></i></div>')


def _elements(result: VerificationResult, output) -> str:
    elements = output.elements
    interpolated = any(not e.exact for e in elements)
    tolerance = {True: result.tolerance, False: result.approximate_tolerance}
    scale = LogScale.around([e.rel_error for e in elements] + [result.approximate_tolerance] * interpolated,
                            result.tolerance)
    head = ["element", '<th class="num">rel error</th>', "error on a log scale (tick: tolerance)",
            '<th class="num">max abs error</th>', '<th class="num">rel/spread</th>']
    head += ['<th class="num">interp. floor</th>'] * interpolated + ["result"]
    rows = []
    for e in elements:
        cells = [f'<td class="name">{escape(e.element)}{"" if e.exact else " ~"}</td>',
                 f'<td class="num{"" if e.passed else " bad"}">{fmt(e.rel_error)}</td>',
                 f"<td>{_bar(e, tolerance[e.exact], scale)}</td>",
                 f'<td class="num">{fmt(e.max_abs_error)}</td>', f'<td class="num">{fmt(e.spread_ratio)}</td>']
        cells += [f'<td class="num">{fmt(e.interpolation_floor)}</td>'] * interpolated
        rows.append("<tr>" + "".join(cells) + f"<td>{_status(e.passed, e.nonfinite)}</td></tr>")
    caption = (f"{escape(output.name)} {list(output.shape)} as {escape(output.representation)}"
               + (" &middot; ~ interpolated rotation, checked against the interpolated tolerance"
                  if interpolated else ""))
    several = len(result.outputs) > 1
    title = f"Output {escape(output.name)}, per group element" if several else "Output, per group element"
    anchor = f"elements-{result.outputs.index(output)}" if several and result.outputs.index(output) else "elements"
    return (f'<section id="{anchor}"><h2>{title}</h2><table><thead><tr>'
            + "".join(h if h.startswith("<th") else f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>\n" + "\n".join(rows) + f'</tbody></table><p class="caption">{caption}</p>'
            "</section>")


def _layer_status(layer: LayerResult, first: bool) -> str:
    if first:
        return '<span class="badge fail">FAIL &larr; first</span>'
    if not layer.passed:
        return _status(False)
    if layer.representation_source == "block":
        return '<span class="badge dim">ok, block</span>'
    if layer.representation_source == "undetermined":
        return '<span class="badge dim" title="no action eqcheck knows explains it: not judged">-</span>'
    if layer.local_rel_error is None and not layer.cumulative_passed:
        return '<span class="badge dim" title="its own error is not separated from earlier layers\'">-</span>'
    if not layer.cumulative_passed:
        return '<span class="badge dim" title="exact itself; the error comes from an earlier layer">ok</span>'
    return _status(True)


def _layers(result: VerificationResult) -> str:
    if not result.layers:
        return ('<section id="layers"><h2>Layers</h2><p class="caption">This result holds no per-layer '
                "analysis.</p></section>")
    rows = []
    for index, layer in enumerate(result.layers):
        first = layer.name == result.first_failing_layer
        block = layer.representation_source == "block"
        rows.append(
            f'<tr{" class=first" if first else ""}><td class="num">{index + 1}</td>'
            f'<td class="name">{escape(layer.name)}</td><td>{escape(layer.op)}</td>'
            f'<td class="num">{"x".join(str(d) for d in layer.shape)}</td><td>{escape(action_text(layer))}</td>'
            f'<td class="num{"" if layer.cumulative_passed or block else " bad"}">{fmt(layer.max_rel_error)}</td>'
            f'<td class="num{"" if layer.passed else " bad"}">{fmt(layer.local_rel_error)}</td>'
            f"<td>{_layer_status(layer, first)}</td></tr>")
    per_element = any(layer.element_errors for layer in result.layers)
    return (f'<section id="layers"><h2>Error per layer</h2>\n{layer_chart(result)}\n'
            '<p class="caption">cumulative: the error of the layer\'s output, where the error becomes visible; '
            "local: the layer on an exact input, i.e. which layer makes the error. Hover a point for its layer."
            f'</p></section>\n<section id="heatmap"><h2>Layers &times; '
            f'{"elements" if per_element else "cumulative and local error"}</h2>\n{heat_map(result)}\n'
            + ("" if per_element else '<p class="caption">This result holds no per-element layer errors: rows '
               "are the largest error over the elements.</p>")
            + '</section>\n<section id="layer-table"><h2>Layers</h2><table><thead><tr><th class="num">#</th>'
            '<th>layer</th><th>op</th><th class="num">shape</th><th>action</th><th class="num">cumulative</th>'
            '<th class="num">local</th><th></th></tr></thead><tbody>\n' + "\n".join(rows)
            + "</tbody></table></section>")


def _samples_used(spec: str) -> bool:
    """Whether the group draws elements (``--samples`` applies): not where every element is tested."""
    from eqcheck.errors import UsageError
    from eqcheck.groups import parse_group

    try:
        return parse_group(spec).samples_elements
    except UsageError:  # a saved result of a group this eqcheck does not know
        return True


def _run(result: VerificationResult) -> str:
    run = result.run
    rows = [("model", f"{run.model} ({run.model_format})"), ("group", run.group)]
    rows += [("input", f"{name} {list(shape)} as {run.input_actions.get(name, '?')} ({run.input_source})")
             for name, shape in run.inputs.items()]
    for output in result.outputs:
        chosen = CHOSEN.get(output.representation_source, output.representation_source)
        rows += [("output", f"{output.name} {list(output.shape)} as {output.representation} ({chosen})")]
        if output.candidates:
            rows.append(("actions tried", ", ".join(f"{c.representation} {fmt(c.max_rel_error)}"
                                                    for c in output.candidates)))
    rows += [("precision", f"{run.dtype} on {run.device}, seed {run.seed}"),
             ("samples", f"{run.samples}, {passes(run.forward_passes)}" if _samples_used(run.group)
              else f"every element ({passes(run.forward_passes)})"),
             ("tolerance", f"{fmt(result.tolerance)} (exact elements), {fmt(result.approximate_tolerance)} "
                           "(interpolated)"),
             ("spread", f"{', '.join(fmt(o.spread) for o in result.outputs)} (output change between unrelated "
                        f"inputs)"),
             ("non-determinism", fmt(result.non_determinism)),
             ("eqcheck", f"{run.eqcheck_version}, {result.elapsed_s:.2f} s")]
    command = escape(run.command) if run.command else "(not recorded: the result was made by the library)"
    pairs = "".join(f"<dt>{k}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return (f'<section id="run"><h2>Model and run</h2><dl>{pairs}</dl>'
            f'<h3>Reproduce</h3><pre id="command">{command}</pre></section>')
