"""Settings: one table maps each to its INI `[section] key` and its `WTFLOW_*` variable.

Precedence is defaults < INI file < environment < explicit arguments, merged in `Config.load`.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wtflow.errors import ConfigError

CONSOLE_MODES = ("raw", "plain", "live", "quiet")


def default_max_parallel() -> int:
    # Nodes mostly wait (tests, compilers, network, sleeps), so a few per core keeps the machine
    # busy; a cap at all keeps a 1,000-child fan-out from starting 1,000 processes at once.
    return max(8, 4 * (os.cpu_count() or 1))


def parse_bool(raw: str, *, source: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true"}:
        return True
    if value in {"0", "false"}:
        return False
    raise ConfigError(f"{source}={raw!r} is not a boolean; use one of 0, 1, true, false")


def parse_positive_int(raw: str, *, source: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{source}={raw!r} is not a whole number >= 1; use e.g. 8")
    return value


def parse_seconds(raw: str, *, source: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{source}={raw!r} is not a number of seconds >= 0; use e.g. 2.5")
    return value


def parse_timeout(raw: str, *, source: str) -> float | None:
    if raw.strip().lower() in {"", "none", "0"}:
        return None
    return parse_seconds(raw, source=source)


def parse_console(raw: str, *, source: str) -> str:
    value = raw.strip().lower()
    if value not in CONSOLE_MODES:
        raise ConfigError(f"{source}={raw!r} is not a console mode; use one of {', '.join(CONSOLE_MODES)}")
    return value


EXECUTOR_SCHEMES = ("tcp://", "tls://", "inproc://")


def parse_executor(raw: str, *, source: str) -> str:
    value = raw.strip()
    if value.lower() == "local":
        return "local"
    scheme, _, where = value.partition("://")
    if f"{scheme.lower()}://" in EXECUTOR_SCHEMES and where.strip("/"):
        return value
    raise ConfigError(
        f"{source}={raw!r} is not an executor; use local, or a Dask scheduler address "
        "such as tcp://scheduler:8786 (tls://, inproc:// too)"
    )


def parse_path(raw: str, *, source: str) -> Path | None:
    return Path(raw).expanduser() if raw.strip() else None


def parse_text(raw: str, *, source: str) -> str:
    return raw.strip()


@dataclass(frozen=True, slots=True)
class Setting:
    group: str  # attribute of Config holding the section object
    field: str
    section: str  # INI section
    key: str  # INI key
    env: str
    parse: Callable[..., Any]
    help: str


SETTINGS = (
    Setting("db", "url", "database", "url", "WTFLOW_DB_URL", parse_text,
            "SQLAlchemy URL of the run record; empty = no database; unset = SQLite file in the state dir"),
    Setting("storage", "artifacts_dir", "storage", "artifacts_dir", "WTFLOW_ARTIFACTS_DIR", parse_path,
            "where node output is kept (default: <state_dir>/artifacts)"),
    Setting("storage", "state_dir", "storage", "state_dir", "WTFLOW_STATE_DIR", parse_path,
            "project-local folder for the database and artifacts (default: .wtflow)"),
    Setting("run", "ignore_failure", "run", "ignore_failure", "WTFLOW_IGNORE_FAILURE", parse_bool,
            "keep going after a failure (the run still exits 1)"),
    Setting("run", "max_parallel", "run", "max_parallel", "WTFLOW_MAX_PARALLEL", parse_positive_int,
            "most processes running at once (default: 4 per core, at least 8)"),
    Setting("run", "kill_grace", "run", "kill_grace", "WTFLOW_KILL_GRACE", parse_seconds,
            "seconds between SIGTERM and SIGKILL when a node is stopped"),
    Setting("run", "timeout", "run", "timeout", "WTFLOW_TIMEOUT", parse_timeout,
            "default time limit in seconds for every node (none = no limit)"),
    Setting("run", "console", "run", "console", "WTFLOW_CONSOLE", parse_console,
            "terminal output: raw (the nodes' bytes), plain (prefixed lines), live (a tree), quiet"),
    Setting("run", "executor", "run", "executor", "WTFLOW_EXECUTOR", parse_executor,
            "where nodes run: local, or a Dask scheduler address (tcp://host:8786)"),
)  # fmt: skip


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_value(setting: Setting, value: object, *, source: str) -> Any:
    """A value given as a Python object (an override, a dataclass field): text is parsed as the
    INI and environment would parse it, anything else must already have the right type.

    Without this, `overrides={"run.max_parallel": -1}` or a `str` where a path belongs would
    be accepted here and fail mid-run with an error that names neither."""
    if isinstance(value, str) and setting.parse is not parse_text:
        return setting.parse(value, source=source)
    parse = setting.parse
    ok = False
    if parse is parse_text:
        ok = value is None or isinstance(value, str)
    elif parse is parse_path:
        if isinstance(value, os.PathLike):
            value = Path(value)
        ok = value is None or isinstance(value, Path)
    elif parse is parse_bool:
        ok = isinstance(value, bool)
    elif parse is parse_positive_int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    elif parse is parse_seconds:
        ok = _is_number(value) and 0 <= value < float("inf")  # type: ignore[operator]
    elif parse is parse_timeout:
        ok = value is None or (_is_number(value) and 0 < value < float("inf"))  # type: ignore[operator]
    if not ok:
        what, example = _EXPECTED[parse]
        raise ConfigError(f"{source}={value!r} is not {what}; use e.g. {example}")
    return value


_EXPECTED: dict[Callable[..., Any], tuple[str, str]] = {
    parse_text: ("a string", "'sqlite:///runs.db'"),
    parse_path: ("a path", "pathlib.Path('ci-artifacts')"),
    parse_bool: ("True or False", "True"),
    parse_positive_int: ("a whole number >= 1", "8"),
    parse_seconds: ("a number of seconds >= 0", "2.5"),
    parse_timeout: ("a number of seconds > 0 or None", "30, or None for no limit"),
    parse_console: (f"one of {', '.join(CONSOLE_MODES)}", "'plain'"),
    parse_executor: ("'local' or a Dask scheduler address", "'tcp://scheduler:8786'"),
}


def _check_fields(section: object, group: str) -> None:
    for s in SETTINGS:
        if s.group == group:
            value = getattr(section, s.field)
            checked = check_value(s, value, source=f"{group}.{s.field}")
            if checked is not value:
                object.__setattr__(section, s.field, checked)


@dataclass(frozen=True)
class DatabaseConfig:
    """`[database]`: where runs are recorded."""

    url: str | None = None

    def __post_init__(self) -> None:
        _check_fields(self, "db")

    def __repr__(self) -> str:  # the URL may carry a password
        return f"DatabaseConfig(url={None if self.url is None else mask_url(self.url)!r})"

    def resolved_url(self, state_dir: Path) -> str | None:
        """The URL to record into, or None when recording is off."""
        if self.url is None:
            return f"sqlite:///{state_dir / 'wtflow.db'}"
        if self.url.strip().lower() in {"", "none", "off"}:
            return None
        return self.url


@dataclass(frozen=True)
class StorageConfig:
    """`[storage]`: where output is kept."""

    artifacts_dir: Path | None = None
    state_dir: Path | None = None

    def __post_init__(self) -> None:
        _check_fields(self, "storage")

    def resolved_state_dir(self) -> Path:
        return (self.state_dir or Path(".wtflow")).absolute()

    def resolved_artifacts_dir(self) -> Path:
        if self.artifacts_dir is not None:
            return Path(self.artifacts_dir).absolute()
        return self.resolved_state_dir() / "artifacts"


@dataclass(frozen=True)
class RunConfig:
    """`[run]`: how a run behaves."""

    ignore_failure: bool = False
    max_parallel: int = field(default_factory=default_max_parallel)
    kill_grace: float = 2.0
    timeout: float | None = None
    console: str = "raw"
    executor: str = "local"

    def __post_init__(self) -> None:
        _check_fields(self, "run")


@dataclass(frozen=True)
class Config:
    """All settings. Build with `Config.load()`, `Config.from_env()` or `Config.from_ini(path)`."""

    db: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Defaults, then `WTFLOW_*` variables."""
        return cls.load(environ=environ)

    @classmethod
    def from_ini(cls, path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
        """Defaults, then the INI file, then `WTFLOW_*` variables (which win, as everywhere)."""
        return cls.load(ini=path, environ=environ)

    @classmethod
    def load(
        cls,
        *,
        ini: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Config:
        """defaults < INI file < environment < `overrides` (keys like 'run.max_parallel')."""
        values: dict[str, Any] = {}
        if ini is not None:
            values.update(values_from_ini(read_ini(ini), filename=str(ini)))
        values.update(values_from_env(os.environ if environ is None else environ))
        values.update(overrides or {})
        return cls().with_values(values)

    def with_values(self, values: Mapping[str, Any]) -> Config:
        """A copy with 'group.field' keys replaced."""
        known = {f"{s.group}.{s.field}" for s in SETTINGS}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown setting {sorted(unknown)[0]!r}; known: {', '.join(sorted(known))}")
        groups: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            group, name = key.split(".")
            groups.setdefault(group, {})[name] = value
        return dataclasses.replace(
            self, **{g: dataclasses.replace(getattr(self, g), **v) for g, v in groups.items()}
        )

    def describe(self) -> dict[str, Any]:
        """The effective settings as plain values, passwords masked (for the record)."""
        out: dict[str, Any] = {}
        for s in SETTINGS:
            value = getattr(getattr(self, s.group), s.field)
            if s.field == "url" and isinstance(value, str):
                value = mask_url(value)
            out[f"{s.section}.{s.key}"] = str(value) if isinstance(value, Path) else value
        return out


def read_ini(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist; check the path given to -c") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {e}") from None


def values_from_ini(text: str, *, filename: str) -> dict[str, Any]:
    """Parse INI text into 'group.field' values; unknown sections and keys are errors."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=filename)
    except configparser.Error as e:
        first = str(e).splitlines()[0]
        raise ConfigError(f"{filename}: not a valid INI file: {first}") from None
    by_key = {(s.section, s.key): s for s in SETTINGS}
    sections = sorted({s.section for s in SETTINGS})
    values: dict[str, Any] = {}
    for section in parser.sections():
        if section not in sections:
            raise ConfigError(
                f"{filename}: unknown section [{section}]; known sections: {', '.join(sections)}"
            )
        for key, raw in parser.items(section):
            setting = by_key.get((section, key))
            if setting is None:
                keys = ", ".join(s.key for s in SETTINGS if s.section == section)
                raise ConfigError(f"{filename}: unknown key {key!r} in [{section}]; known keys: {keys}")
            values[f"{setting.group}.{setting.field}"] = setting.parse(
                raw, source=f"{filename}: [{section}] {key}"
            )
    return values


def values_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Parse the `WTFLOW_*` variables that are set into 'group.field' values."""
    return {
        f"{s.group}.{s.field}": s.parse(environ[s.env], source=s.env) for s in SETTINGS if s.env in environ
    }


# Greedy up to the last '@': a password with a raw '@' in it is masked whole (over-masking a
# stray '@' later in the URL is the safe way to be wrong).
_URL_PASSWORD = re.compile(r"^(?P<head>[^:/]+://[^:/@]*):(?P<password>.*)@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)[^&]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with its password (in the user part or the query) replaced by ***."""
    return _QUERY_PASSWORD.sub(r"\g<head>***", _URL_PASSWORD.sub(r"\g<head>:***@", url))
