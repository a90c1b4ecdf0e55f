"""The pytest plugin: ``pytest --eqcheck`` (or ``eqcheck = true`` under ``[tool.pytest.ini_options]``)
collects every model of ``[tool.eqcheck]`` as a test item, the way pytest-mypy and pytest-ruff add their
checks to a test run. An item passes where the model does what its entry expects (a known failure is an
xfail, an unexpected pass fails); a failure prints the verdict, the worst elements, the first failing
layer and the known causes (``report.text.failure_message``); a model that cannot be checked is an error.

Registered through the ``pytest11`` entry point; nothing is imported from eqcheck's check path until an
item runs, so the plugin costs a test run that does not ask for it nothing."""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("eqcheck", "equivariance checks of [tool.eqcheck] models")
    group.addoption("--eqcheck", action="store_true", default=False,
                    help="collect every model of [tool.eqcheck] as a test item")
    group.addoption("--eqcheck-config", default=None, metavar="PATH",
                    help="the TOML file holding [tool.eqcheck] (default: the nearest pyproject.toml)")
    parser.addini("eqcheck", type="bool", default=False, help="always collect the [tool.eqcheck] models")


def _enabled(config) -> bool:
    return bool(config.getoption("eqcheck") or config.getini("eqcheck"))


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "eqcheck: an equivariance check of a [tool.eqcheck] model")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items) -> None:
    """The models of the config, after the tests pytest found; first among the hooks, so that ``-k`` and
    ``-m eqcheck`` select among them as among the others."""
    if not _enabled(config):
        return
    from eqcheck.config import find_config

    given = config.getoption("eqcheck_config")
    path = Path(given) if given else find_config(Path(config.rootpath))
    items.extend(EqcheckConfig.from_parent(session, path=path.resolve()).collect())


class EqcheckFailure(Exception):
    """A listed model that did not do what its entry expects."""


class EqcheckConfig(pytest.File):
    """A ``[tool.eqcheck]`` table: one item per listed model, in config order."""

    def collect(self):
        from eqcheck.config import load_config

        settings = load_config(self.path)
        for index, entry in enumerate(settings.models):
            yield EqcheckItem.from_parent(self, name=f"eqcheck[{entry.name}]", entry=entry,
                                          defaults=settings.defaults, index=index)


class EqcheckItem(pytest.Item):
    def __init__(self, *, entry, defaults, index: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.entry, self.defaults, self.index = entry, defaults, index
        self.add_marker("eqcheck")

    def runtest(self) -> None:
        from eqcheck.checks import check_model
        from eqcheck.config import resolve_options
        from eqcheck.gate import ERROR, KNOWN_FAILURE, UNEXPECTED_PASS, model_status
        from eqcheck.report.text import failure_message

        outcome = check_model(self.entry, resolve_options(self.entry, self.defaults, {}))
        status = model_status(outcome)
        if status == ERROR:
            raise EqcheckFailure(f"{self.entry.name} could not be checked: {outcome.error}")
        if status == KNOWN_FAILURE:
            pytest.xfail(f"{self.entry.name}: not equivariant, as its entry expects (expect = \"fail\")")
        if status == UNEXPECTED_PASS:
            raise EqcheckFailure(f"{self.entry.name} is equivariant, but its entry says expect = \"fail\": "
                                 f"remove that line")
        if not outcome.result.passed:
            raise EqcheckFailure(failure_message(outcome.result))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, EqcheckFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"eqcheck: {self.entry.name} ({self.entry.model})"
