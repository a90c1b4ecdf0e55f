"""The command line: parse options, call the library, choose reporters, return the exit code."""
from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

from eqcheck.errors import EXIT_INTERRUPTED, EXIT_MODEL, EXIT_USAGE, EqcheckError
from eqcheck.errors import UsageError as EqcheckUsage
from eqcheck.guard import DEFAULT_TIMEOUT_S, in_main_thread
from eqcheck.report.inert import printable

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Is this network equivariant to this group, and if not, where does it break?\n\n"
         "Exit codes: 0 equivariant, 1 not equivariant, 2 usage error, 3 model could not be loaded or run, "
         "130 interrupted.\n\n"
         "A model given as file.py:attr or package.module:attr is imported, which runs its code (as pytest "
         "runs conftest.py): point eqcheck only at code you trust. Model files (.onnx, .pt2, TorchScript) "
         "are loaded without unpickling code; --unsafe-load allows a pickled module.",
)


def _version(value: bool) -> None:
    if value:
        from eqcheck import __version__

        typer.echo(f"eqcheck {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """eqcheck: equivariance checks for neural networks."""


@app.command()
def verify(
    model: str = typer.Argument(..., help="model.onnx, model.pt2, a TorchScript file, or file.py:attr / pkg.mod:attr "
                                          "(imported: runs that code)"),
    group: str = typer.Option(..., "--group", "-g", help="group spec: p4, p4m[:groupy|:axis=0], cN, dN, so2, "
                                                           "translation, perm[:axis=0], so3, o3, se3, e3 "
                                                           "('eqcheck groups' lists them)"),
    input_shape: Optional[list[str]] = typer.Option(None, "--input-shape", help="B,C,H,W or NAME=B,C,H,W"),
    input_file: Optional[Path] = typer.Option(None, "--input", help="real inputs: .npy, or .npz (key 'input' or by input name)"),
    act: Optional[list[str]] = typer.Option(None, "--act", help="declare an input's action: NAME=TYPE"),
    output_type: Optional[list[str]] = typer.Option(
        None, "--output-type", help="an output's type, TYPE (the first output) or NAME=TYPE, repeatable: "
                                    "auto, invariant, image, set, graph; regular with a layout "
                                    "(regular:5d, regular:field-major, regular:group-major); a field type "
                                    "(vector, irrep(1), 2*regular+irrep(1,1)+trivial, 3*regular@c8); under "
                                    "3-D groups positions, 1o, 1e, 0o, cartesian, cell or any e3nn irreps "
                                    "(2x0e+1x1o, 1o:escnn)"),
    output: Optional[str] = typer.Option(None, "--output", help="check this output only (default: every output)"),
    tol: Optional[float] = typer.Option(None, "--tol", help="tolerance on rel error for exact elements (default per dtype)"),
    approx_tol: Optional[float] = typer.Option(None, "--approx-tol", help="tolerance for interpolated rotations"),
    seed: int = typer.Option(0, "--seed", help="seed for inputs and sampled elements"),
    samples: int = typer.Option(8, "--samples", help="elements to sample for so2, translations, perm"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="batch for a dynamic batch axis (default 2)"),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="cast a PyTorch model: float32|float64"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="state_dict for a file.py:factory model"),
    unsafe_load: bool = typer.Option(False, "--unsafe-load", help="allow a pickled whole module (runs its code)"),
    tf32: bool = typer.Option(False, "--tf32", help="keep TF32 on GPUs (default: strict float32)"),
    train_mode: bool = typer.Option(False, "--train-mode", help="run a PyTorch model in train mode (default: eval)"),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", help="most samples in one forward pass"),
    per_layer: bool = typer.Option(True, "--per-layer/--no-per-layer", help="per-layer table and first failing layer"),
    layer_type: Optional[list[str]] = typer.Option(None, "--layer-type", help="a layer's output action: NAME=TYPE (NAME may be a glob)"),
    json_path: Optional[str] = typer.Option(None, "--json", help="write the JSON report to PATH ('-' for stdout)"),
    html_path: Optional[str] = typer.Option(None, "--html", help="write the HTML report to PATH"),
    junit_path: Optional[str] = typer.Option(None, "--junit", help="write a JUnit XML report to PATH"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print the verdict line only (and no progress bar)"),
    timeout: float = typer.Option(DEFAULT_TIMEOUT_S, "--timeout", help="seconds the whole check may take "
                                                                      "(0: no limit)"),
) -> None:
    """Check one model against one group; the exit code says whether it passed.

    \b
    Examples:
      eqcheck verify sample_models/p4cnn.onnx --group p4
      eqcheck verify model.py:build --group p4m --input-shape 2,3,64,64 --html report.html
      eqcheck verify mace_like.pt2 --group e3 --output-type energy=invariant --output-type forces=1o
    """
    from eqcheck.api import verify as run_verify
    from eqcheck.gate import exit_code
    from eqcheck.models.sources import check_reads
    from eqcheck.report.outputs import check_outputs, write_reports
    from eqcheck.report.progress import progress_bar

    check_outputs(json_path=json_path, html_path=html_path, junit_path=junit_path,
                  reads=check_reads(model, input_file, weights))
    json_path, html_path, junit_path = map(_absolute, (json_path, html_path, junit_path))
    with progress_bar(quiet) as progress:
        result = run_verify(
            model, group, input_shape=input_shape, inputs=input_file, act=act, output_type=output_type or "auto",
            output=output, tol=tol, approx_tol=approx_tol, seed=seed, samples=samples, batch_size=batch_size,
            dtype=dtype, device=device, weights=str(weights) if weights else None, unsafe_load=unsafe_load,
            allow_tf32=tf32, train_mode=train_mode, max_batch=max_batch, per_layer=per_layer,
            layer_types=layer_type, progress=progress, command=_command_line(), timeout=timeout,
        )
    write_reports(result, json_path=json_path, html_path=html_path, junit_path=junit_path, quiet=quiet)
    raise typer.Exit(exit_code(result))


@app.command()
def report(
    result_paths: list[Path] = typer.Argument(..., metavar="RESULT.json...",
                                              help="a result saved with --json; or the shards of one "
                                                   "'eqcheck check --shard K/N --json', merged"),
    html_path: Optional[str] = typer.Option(None, "--html", help="write the HTML report to PATH"),
    junit_path: Optional[str] = typer.Option(None, "--junit", help="write a JUnit XML report to PATH"),
    json_path: Optional[str] = typer.Option(None, "--json", help="write the merged check as JSON to PATH"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print the verdict line only"),
) -> None:
    """Render saved JSON results again (terminal, --html, --junit); several 'eqcheck check' shards are merged
    into one verdict, one table, one page. The exit code is the verdict's."""
    from eqcheck.gate import exit_code
    from eqcheck.report.outputs import check_outputs, read_saved, write_reports
    from eqcheck.report.targets import ReadFile
    from eqcheck.result import VerificationResult

    check_outputs(html_path=html_path, junit_path=junit_path, json_path=json_path,
                  reads=[ReadFile(path, "the result") for path in result_paths])
    html_path, junit_path, json_path = map(_absolute, (html_path, junit_path, json_path))
    saved = [read_saved(path) for path in result_paths]
    if len(saved) == 1 and isinstance(saved[0], VerificationResult):
        write_reports(saved[0], html_path=html_path, junit_path=junit_path, json_path=json_path, quiet=quiet)
        raise typer.Exit(exit_code(saved[0]))
    if any(isinstance(s, VerificationResult) for s in saved):
        raise EqcheckUsage("several results merge only as the shards of one 'eqcheck check --json'; give "
                           "'eqcheck verify' results one at a time")
    from eqcheck.checks import merge_shards
    from eqcheck.gate import gate_checks
    from eqcheck.report.outputs import write_check_reports

    outcomes = merge_shards(saved)
    verdict = gate_checks(outcomes)
    write_check_reports(outcomes, verdict, json_path=json_path, html_path=html_path, junit_path=junit_path,
                        quiet=quiet, config_models=max(s.config_models for s in saved))
    raise typer.Exit(verdict.exit_code)


@app.command()
def check(
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with [tool.eqcheck] (default: the "
                                                                  "nearest pyproject.toml)"),
    group: Optional[str] = typer.Option(None, "--group", "-g", help="check every model against this group"),
    output_type: Optional[list[str]] = typer.Option(None, "--output-type", help="override every model's output "
                                                                                 "types (TYPE or NAME=TYPE)"),
    tol: Optional[float] = typer.Option(None, "--tol", help="override every model's tolerance"),
    approx_tol: Optional[float] = typer.Option(None, "--approx-tol", help="tolerance for interpolated rotations"),
    seed: Optional[int] = typer.Option(None, "--seed", help="seed for inputs and sampled elements"),
    samples: Optional[int] = typer.Option(None, "--samples", help="elements to sample for so2, translations, perm"),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", help="most samples in one forward pass"),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="cast PyTorch models: float32|float64"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda"),
    per_layer: Optional[bool] = typer.Option(None, "--per-layer/--no-per-layer", help="per-layer analysis"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help=f"seconds each model's check may take (0: no "
                                                                     f"limit; default {DEFAULT_TIMEOUT_S:g})"),
    json_path: Optional[str] = typer.Option(None, "--json", help="write every model's result and the verdict as "
                                                                 "JSON to PATH ('-' for stdout)"),
    html_path: Optional[str] = typer.Option(None, "--html", help="write one HTML page: the verdict, a row per "
                                                                 "model, each model's report"),
    junit_path: Optional[str] = typer.Option(None, "--junit", help="write a JUnit XML report to PATH"),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="models checked at once, each in its own "
                                                                   "process with its share of the cores "
                                                                   "(default: $EQCHECK_JOBS, else the cores)"),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="K/N", help="check only shard K of N (the "
                                                                             "models at positions K, K+N, ...); "
                                                                             "merge the shards' --json with "
                                                                             "'eqcheck report'"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="print each model's full report too"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print the verdict line only (and no progress bar)"),
) -> None:
    """Check every model listed in [tool.eqcheck]; exit 1 if one is not equivariant (flags > model entry >
    [tool.eqcheck] defaults > built-in defaults)."""
    from eqcheck.checks import default_jobs, parse_shard, run_checks
    from eqcheck.config import config_reads, load_config
    from eqcheck.gate import gate_checks
    from eqcheck.report.outputs import check_outputs, write_check_reports
    from eqcheck.report.progress import progress_bar

    settings = load_config(config)
    check_outputs(json_path=json_path, html_path=html_path, junit_path=junit_path, reads=config_reads(settings))
    json_path, html_path, junit_path = map(_absolute, (json_path, html_path, junit_path))
    overrides = dict(group=group, output_type=output_type or None, tol=tol, approx_tol=approx_tol, seed=seed,
                     samples=samples, max_batch=max_batch, dtype=dtype, device=device, per_layer=per_layer,
                     timeout=timeout)
    parts = parse_shard(shard)
    if jobs is not None and jobs < 1:
        raise EqcheckUsage(f"--jobs {jobs}: give 1 or more")
    with progress_bar(quiet) as progress:
        outcomes = run_checks(settings, overrides, progress=progress, command=_command_line(),
                              jobs=default_jobs() if jobs is None else jobs, shard=parts)
    verdict = gate_checks(outcomes)
    write_check_reports(outcomes, verdict, json_path=json_path, html_path=html_path, junit_path=junit_path,
                        quiet=quiet, verbose=verbose, shard=parts, config_models=len(settings.models))
    raise typer.Exit(verdict.exit_code)


@app.command()
def groups() -> None:
    """List the groups eqcheck knows, one line each."""
    from eqcheck.groups import REGISTRY

    width = max(len(spec) for spec, _ in REGISTRY)
    for spec, summary in REGISTRY:
        typer.echo(f"{spec:<{width}}  {summary}")


def _absolute(path: str | None) -> str | None:
    """A report path fixed before any model code runs (a factory may change the working folder)."""
    return path if path in (None, "-") else os.path.abspath(path)


#: the arguments of the running command (``main(argv)`` may be called in-process, not from sys.argv)
_arguments: list[str] | None = None


def _command_line() -> str:
    arguments = sys.argv[1:] if _arguments is None else _arguments
    return "eqcheck " + " ".join(shlex.quote(a) for a in arguments)


def _is(error: BaseException, name: str) -> bool:
    """Typer raises click's exceptions (vendored or not, by version): match them by class name."""
    return any(cls.__name__ == name for cls in type(error).__mro__)


def main(argv: list[str] | None = None) -> int:
    """Entry point: every error becomes one line on stderr and a documented exit code; nothing a model or a
    library raises ends the process with another code, and no Python warning or log line reaches stderr
    (``EQCHECK_DEBUG=1`` or ``python -W`` show them)."""
    global _arguments
    _arguments = None if argv is None else list(argv)
    debug = bool(os.environ.get("EQCHECK_DEBUG"))
    interrupted: list[int] = []

    def on_interrupt(signum, frame):  # typer turns Ctrl-C into a silent exit 130: remember it was one
        interrupted.append(signum)
        raise KeyboardInterrupt

    main_thread = in_main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if main_thread else None
    with warnings.catch_warnings():
        if not (debug or sys.warnoptions):
            warnings.simplefilter("ignore")
            logging.disable(logging.CRITICAL)
        try:
            code = _main(argv, debug, interrupted)
        finally:
            logging.disable(logging.NOTSET)
            if main_thread:
                signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    if interrupted:
        typer.echo("eqcheck: interrupted", err=True)
        return EXIT_INTERRUPTED
    return code


def _error(text: str) -> None:
    typer.echo(f"eqcheck: error: {printable(text)}", err=True)


#: typer's shell-completion options: they print or install a script and exit 0 before any command runs
COMPLETION_OPTIONS = ("--show-completion", "--install-completion")


def _main(argv: list[str] | None, debug: bool, interrupted: list[int]) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="eqcheck", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except EqcheckError as error:
        _error(error.message)
        return error.exit_code
    except KeyboardInterrupt:  # main() says so
        return EXIT_INTERRUPTED
    except Exception as error:  # never a traceback on the terminal; EQCHECK_DEBUG=1 shows it
        if _is(error, "Exit"):
            return error.exit_code
        if _is(error, "NoArgsIsHelpError"):  # bare `eqcheck`: the help, not an error line
            typer.echo(error.format_message(), err=True)
            return EXIT_USAGE
        if _is(error, "UsageError"):
            _error(error.format_message())
            return EXIT_USAGE
        if _is(error, "Abort"):  # click (without typer's wrapper) turns Ctrl-C into Abort; main() says so
            return EXIT_INTERRUPTED
        if debug:
            raise
        if interrupted:  # what a Ctrl-C broke on its way (an import it stopped): main() says interrupted
            return EXIT_INTERRUPTED
        _error(f"internal error: {type(error).__name__}: {error} (set EQCHECK_DEBUG=1 for the traceback)")
        return EXIT_MODEL
    except SystemExit as error:  # click's own (a closed stdout: exit 1) pass; exit 0 comes from a verdict only
        if isinstance(error.code, int) and error.code != 0:
            return error.code
        arguments = sys.argv[1:] if argv is None else list(argv)
        if arguments[:1] and arguments[0].split("=")[0] in COMPLETION_OPTIONS:  # done before any command runs
            return 0
        if debug:
            raise
        _error(f"internal error: SystemExit({error.code!r}) ended the run (set EQCHECK_DEBUG=1 for the traceback)")
        return EXIT_MODEL
    except BaseException as error:  # anything else that escaped every guard: never a silent exit 0
        if debug:
            raise
        _error(f"internal error: {type(error).__name__}({error}) ended the run (set EQCHECK_DEBUG=1 for the "
               f"traceback)")
        return EXIT_MODEL


def run() -> None:
    """The console script: the exit code is main()'s, whatever exit handlers a model's code registered
    (an ``atexit`` callback calling ``os._exit(0)`` would otherwise end the process with its code)."""
    code = main()
    _run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _run_exit_handlers() -> None:
    """Python's and the libraries' exit handlers, run now with exits turned into exceptions and their
    complaints kept off stderr."""
    import atexit
    import io

    from eqcheck.guard import exits_disarmed

    stderr = sys.stderr
    sys.stderr = io.StringIO()
    try:
        with exits_disarmed():
            atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001 - nothing an exit handler does changes the verdict
        pass
    finally:
        sys.stderr = stderr
