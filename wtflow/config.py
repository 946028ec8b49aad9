"""Settings: one table maps each to its INI `[section] key` and its `WTFLOW_*` variable.

Precedence is defaults < INI file < environment < explicit arguments, merged in `Config.load`,
which also keeps where each value came from (`Config.sources`, shown by `wtflow config`).
A setting is spelled `section.key` everywhere (`database.url`, `run.max_parallel`): in
`Config.load(overrides=...)`, `Config.describe()`, the record and `wtflow config`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wtflow.errors import ConfigError

if TYPE_CHECKING:
    import configparser

# configparser, ast and difflib are imported where an INI file or a mistake needs them: every
# command reads the settings, most with no INI file and no mistake (`wtflow list` must be quick).

CONSOLE_MODES = ("raw", "plain", "live", "quiet")
CI_MODES = ("auto", "github", "gitlab", "none")


def default_max_parallel() -> int:
    # Nodes mostly wait (tests, compilers, network, sleeps), so a few per core keeps the machine
    # busy; a cap at all keeps a 1,000-child fan-out from starting 1,000 processes at once.
    return max(8, 4 * (os.cpu_count() or 1))


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_bool(raw: str, *, source: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{source}={raw!r} is not a boolean; use one of 0, 1, true, false, yes, no, on, off")


def parse_positive_int(raw: str, *, source: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{source}={raw!r} is not a whole number >= 1; use e.g. 8")
    return value


def parse_keep_runs(raw: str, *, source: str) -> int | None:
    if raw.strip().lower() in {"", "none"}:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        # 0 is refused rather than read as "off": it could as well mean "keep nothing".
        raise ConfigError(
            f"{source}={raw!r} is not a whole number >= 1; use e.g. 20, or none to keep every run"
        )
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
    if raw.strip().lower() in {"", "none"}:
        return None
    return parse_seconds(raw, source=source) or None  # 0, 0.0, 1e-400: no limit, as "none"


def parse_console(raw: str, *, source: str) -> str:
    value = raw.strip().lower()
    if value not in CONSOLE_MODES:
        raise ConfigError(f"{source}={raw!r} is not a console mode; use one of {', '.join(CONSOLE_MODES)}")
    return value


def parse_ci(raw: str, *, source: str) -> str:
    value = raw.strip().lower()
    if value not in CI_MODES:
        raise ConfigError(f"{source}={raw!r} is not a CI mode; use one of {', '.join(CI_MODES)}")
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


_FLAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+-]*")


def parse_flags(raw: str, *, source: str) -> tuple[str, ...]:
    """`a, b` as the flags a and b, sorted and each once; empty: none."""
    names = [name.strip() for name in raw.split(",")]
    for name in names:
        if name and not _FLAG.fullmatch(name):
            raise ConfigError(
                f"{source}={raw!r} is not a list of flag names ({name!r} is not a word); "
                "use comma-separated words, e.g. deploy, slow"
            )
    return tuple(sorted({name for name in names if name}))


def parse_path(raw: str, *, source: str) -> Path | None:
    return Path(raw).expanduser() if raw.strip() else None


def parse_db_url(raw: str, *, source: str) -> str:
    url = raw.strip()
    scheme, sep, rest = url.partition("://")
    path, _, query = rest.partition("?")
    if (
        sep
        and scheme.lower().split("+")[0] == "sqlite"
        and (path in ("", "/", "/:memory:") or path.startswith("/file::memory:") or "mode=memory" in query)
    ):
        # Each connection would get a database of its own, gone when the run ends.
        raise ConfigError(
            f"{source}={mask_url(url)!r} is an in-memory SQLite database, which keeps no record; "
            "use a file, e.g. sqlite:///wtflow.db, or an empty value to record nothing"
        )
    return url


@dataclass(frozen=True, slots=True)
class Setting:
    group: str  # attribute of Config holding the section object
    field: str
    section: str  # INI section
    key: str  # INI key
    env: str
    parse: Callable[..., Any]
    help: str

    @property
    def name(self) -> str:
        """The one spelling of this setting: `section.key` (e.g. `database.url`)."""
        return f"{self.section}.{self.key}"

    @property
    def secret(self) -> bool:
        return self.field == "url"


SETTINGS = (
    Setting("db", "url", "database", "url", "WTFLOW_DB_URL", parse_db_url,
            "SQLAlchemy URL of the run record; empty = no database; unset = SQLite file in the state dir"),
    Setting("storage", "artifacts_dir", "storage", "artifacts_dir", "WTFLOW_ARTIFACTS_DIR", parse_path,
            "where node output is kept (default: <state_dir>/artifacts)"),
    Setting("storage", "state_dir", "storage", "state_dir", "WTFLOW_STATE_DIR", parse_path,
            "project-local folder for the database and artifacts (default: .wtflow)"),
    Setting("storage", "keep_runs", "storage", "keep_runs", "WTFLOW_KEEP_RUNS", parse_keep_runs,
            "after each run, remove all but this many newest runs of its workflow (none = keep every run)"),
    Setting("run", "ignore_failure", "run", "ignore_failure", "WTFLOW_IGNORE_FAILURE", parse_bool,
            "keep going after a failure (the run still exits 1)"),
    Setting("run", "fail_fast", "run", "fail_fast", "WTFLOW_FAIL_FAST", parse_bool,
            "the first failure stops every running node (cancelled) and skips the rest"),
    Setting("run", "max_parallel", "run", "max_parallel", "WTFLOW_MAX_PARALLEL", parse_positive_int,
            "most processes running at once (default: 4 per core, at least 8)"),
    Setting("run", "kill_grace", "run", "kill_grace", "WTFLOW_KILL_GRACE", parse_seconds,
            "seconds between SIGTERM and SIGKILL when a node is stopped"),
    Setting("run", "timeout", "run", "timeout", "WTFLOW_TIMEOUT", parse_timeout,
            "default time limit in seconds for every node (none or 0 = no limit)"),
    Setting("run", "deadline", "run", "deadline", "WTFLOW_DEADLINE", parse_timeout,
            "seconds the whole run may take: then what runs is stopped, the rest skipped (none or 0 = no limit)"),
    Setting("run", "flags", "run", "flags", "WTFLOW_FLAGS", parse_flags,
            "feature flags the nodes' when= conditions read (run.flags), comma-separated (--flag)"),
    Setting("run", "max_nodes", "run", "max_nodes", "WTFLOW_MAX_NODES", parse_positive_int,
            "most nodes a run may grow to with dynamic children (a PyFunc returning nodes)"),
    Setting("run", "console", "run", "console", "WTFLOW_CONSOLE", parse_console,
            "terminal output: raw (the nodes' bytes), plain (prefixed lines), live (a tree), quiet"),
    Setting("report", "junit_xml", "report", "junit_xml", "WTFLOW_JUNIT_XML", parse_path,
            "write a JUnit XML report of every node to this file (empty = none)"),
    Setting("report", "ci", "report", "ci", "WTFLOW_CI", parse_ci,
            "CI log format: auto (from GITHUB_ACTIONS / GITLAB_CI), github, gitlab, none"),
    Setting("report", "events", "report", "events", "WTFLOW_EVENTS", parse_path,
            "write every engine event to this file as JSON lines, as they happen (empty = none)"),
    Setting("report", "html", "report", "html", "WTFLOW_REPORT", parse_path,
            "write the run's HTML report to this file when it ends, even when it fails"),
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
    if isinstance(value, str):
        return setting.parse(value, source=source)
    parse = setting.parse
    ok = False
    if parse is parse_db_url:
        ok = value is None
    elif parse is parse_path:
        if isinstance(value, os.PathLike):
            value = Path(value)
        ok = value is None or isinstance(value, Path)
    elif parse is parse_bool:
        ok = isinstance(value, bool)
    elif parse is parse_positive_int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    elif parse is parse_keep_runs:
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
    elif parse is parse_seconds:
        ok = _is_number(value) and 0 <= value < float("inf")  # type: ignore[operator]
    elif parse is parse_flags:
        if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value):
            return parse_flags(",".join(value), source=source)
    elif parse is parse_timeout:
        ok = value is None or (_is_number(value) and 0 < value < float("inf"))  # type: ignore[operator]
    if not ok:
        what, example = _EXPECTED[parse]
        raise ConfigError(f"{source}={value!r} is not {what}; use e.g. {example}")
    return value


_EXPECTED: dict[Callable[..., Any], tuple[str, str]] = {
    parse_db_url: ("a database URL", "'sqlite:///runs.db'"),
    parse_path: ("a path", "pathlib.Path('ci-artifacts')"),
    parse_bool: ("True or False", "True"),
    parse_positive_int: ("a whole number >= 1", "8"),
    parse_keep_runs: ("a whole number >= 1 or None", "20, or None to keep every run"),
    parse_seconds: ("a number of seconds >= 0", "2.5"),
    parse_timeout: ("a number of seconds > 0 or None", "30, or None for no limit"),
    parse_console: (f"one of {', '.join(CONSOLE_MODES)}", "'plain'"),
    parse_ci: (f"one of {', '.join(CI_MODES)}", "'github'"),
    parse_executor: ("'local' or a Dask scheduler address", "'tcp://scheduler:8786'"),
    parse_flags: ("a list of flag names", "('deploy', 'slow')"),
}


def _check_fields(section: object, group: str) -> None:
    for s in SETTINGS:
        if s.group == group:
            value = getattr(section, s.field)
            checked = check_value(s, value, source=s.name)
            if checked is not value:
                object.__setattr__(section, s.field, checked)


@dataclass(frozen=True)
class DatabaseConfig:
    """`[database]`: where runs are recorded."""

    url: str | None = None

    def __post_init__(self) -> None:
        _check_fields(self, "db")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DatabaseConfig:
        """Defaults, then the `WTFLOW_*` variables of this section."""
        return Config.from_env(environ).db

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
    keep_runs: int | None = None  # retention: wtflow.db.retention prunes at the end of each run

    def __post_init__(self) -> None:
        _check_fields(self, "storage")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageConfig:
        """Defaults, then the `WTFLOW_*` variables of this section."""
        return Config.from_env(environ).storage

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
    fail_fast: bool = False
    max_parallel: int = field(default_factory=default_max_parallel)
    kill_grace: float = 2.0
    timeout: float | None = None
    deadline: float | None = None
    flags: tuple[str, ...] = ()
    max_nodes: int = 100_000  # a PyFunc that returns nodes in a loop must not fill the disk and the record
    console: str = "raw"
    executor: str = "local"

    def __post_init__(self) -> None:
        _check_fields(self, "run")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunConfig:
        """Defaults, then the `WTFLOW_*` variables of this section."""
        return Config.from_env(environ).run


@dataclass(frozen=True)
class ReportConfig:
    """`[report]`: what a run writes for CI and for other programs."""

    junit_xml: Path | None = None
    ci: str = "auto"
    events: Path | None = None
    html: Path | None = None

    def __post_init__(self) -> None:
        _check_fields(self, "report")


@dataclass(frozen=True)
class Config:
    """All settings. Build with `Config.load()`, `Config.from_env()` or `Config.from_ini(path)`."""

    db: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    run: RunConfig = field(default_factory=RunConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    # Where each setting that is not a default came from, by `section.key`: "WTFLOW_DB_URL",
    # "ci.ini:3", "flag", "argument". Not compared: two configs with equal values are equal.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Defaults, then `WTFLOW_*` variables."""
        return cls.load(environ=environ)

    @classmethod
    def from_ini(
        cls,
        path: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        ini_path: str | os.PathLike[str] | None = None,
    ) -> Config:
        """Defaults, then the INI file, then `WTFLOW_*` variables (which win, as everywhere).

        `Config.from_ini("ci.ini")` or `Config.from_ini(ini_path="ci.ini")`."""
        if (path is None) == (ini_path is None):
            raise ConfigError("Config.from_ini() takes one INI file; pass it as from_ini('ci.ini')")
        return cls.load(ini=path if path is not None else ini_path, environ=environ)

    @classmethod
    def load(
        cls,
        *,
        ini: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        overrides_source: str = "argument",
    ) -> Config:
        """defaults < INI file < environment < `overrides` (keys like 'run.max_parallel').

        An unknown `WTFLOW_*` variable is a warning on stderr (once per variable and process)
        naming the closest known one; an unknown INI key or override is an error."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        if ini is not None:
            text = read_ini(ini)
            values.update(values_from_ini(text, filename=str(ini)))
            lines = ini_lines(text)
            sources.update({k: f"{ini}:{lines[k]}" if k in lines else str(ini) for k in values})
        from_env = values_from_env(environ)
        values.update(from_env)
        sources.update({s.name: s.env for s in SETTINGS if s.name in from_env})
        for warning in unknown_variables(environ):
            if warning not in _WARNED:
                _WARNED.add(warning)
                # Here, not in the CLI: `Engine(wf)` from a script reads the environment too.
                sys.stderr.write(f"wtflow: warning: {warning}\n")
        config = cls().with_values(values)
        return dataclasses.replace(config, sources=sources).with_values(
            overrides or {}, source=overrides_source
        )

    def with_values(self, values: Mapping[str, Any], *, source: str = "argument") -> Config:
        """A copy with the settings named `section.key` replaced (`group.field`, as in
        `db.url`, is taken too); `source` says where they came from."""
        by_name = {s.name: s for s in SETTINGS} | {f"{s.group}.{s.field}": s for s in SETTINGS}
        unknown = sorted(set(values) - set(by_name))
        if unknown:
            import difflib

            known = ", ".join(s.name for s in SETTINGS)
            close = difflib.get_close_matches(unknown[0], list(by_name), n=1)
            hint = f"did you mean {by_name[close[0]].name!r}? " if close else ""
            raise ConfigError(f"unknown setting {unknown[0]!r}; {hint}known: {known}")
        groups: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            s = by_name[key]
            groups.setdefault(s.group, {})[s.field] = check_value(s, value, source=key)
        sources = dict(self.sources) | {by_name[key].name: source for key in values}
        return dataclasses.replace(
            self,
            sources=sources,
            **{g: dataclasses.replace(getattr(self, g), **v) for g, v in groups.items()},
        )

    def value(self, setting: Setting) -> Any:
        """The effective value of one setting."""
        return getattr(getattr(self, setting.group), setting.field)

    def describe(self) -> dict[str, Any]:
        """The effective settings as plain values by `section.key`, passwords masked (for the
        record, `show --json` and `wtflow config`)."""
        out: dict[str, Any] = {}
        for s in SETTINGS:
            value = self.value(s)
            if s.secret and isinstance(value, str):
                value = mask_url(value)
            out[s.name] = str(value) if isinstance(value, Path) else value
        return out

    def source(self, setting: Setting | str) -> str:
        """Where a setting's value came from: "default", a `WTFLOW_*` variable, "file.ini:LINE",
        "flag" or "argument"."""
        return self.sources.get(setting if isinstance(setting, str) else setting.name, "default")


def read_ini(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist; check the path given to -c") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {e}") from None


def _ini_parser() -> configparser.ConfigParser:
    import configparser

    # `key = value  ; why` and `# why` after a value are comments, as in most INI files. Each key
    # belongs to one section, so [DEFAULT] is no section of defaults: an unknown one, said so.
    return configparser.ConfigParser(
        interpolation=None, inline_comment_prefixes=(";", "#"), default_section="\0no defaults"
    )


def values_from_ini(text: str, *, filename: str) -> dict[str, Any]:
    """Parse INI text into `section.key` values; unknown sections and keys are errors."""
    import configparser

    parser = _ini_parser()
    try:
        parser.read_string(text, source=filename)
    except configparser.Error as e:
        raise ConfigError(f"{filename}:{_error_line(e)}: not a valid INI file: {_error_text(e)}") from None
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
            values[setting.name] = setting.parse(raw, source=f"{filename}: [{section}] {key}")
    return values


def _error_line(e: configparser.Error) -> int:
    import configparser

    if isinstance(e, configparser.MissingSectionHeaderError):
        return e.lineno
    if isinstance(e, configparser.ParsingError) and e.errors:
        return int(e.errors[0][0])
    return int(getattr(e, "lineno", 1) or 1)


def _error_text(e: configparser.Error) -> str:
    import ast
    import configparser

    if isinstance(e, configparser.MissingSectionHeaderError):
        return f"{e.line.strip()!r} comes before any [section]; start the file with e.g. [run]"
    if isinstance(e, configparser.ParsingError) and e.errors:
        line = str(e.errors[0][1])
        with contextlib.suppress(ValueError, SyntaxError):  # Python 3.11 keeps the line's repr
            line = str(ast.literal_eval(line))
        return f"{line.strip()!r} is not `key = value`"
    if isinstance(e, configparser.DuplicateOptionError):
        return f"key {e.option!r} appears twice in [{e.section}]; keep one"
    if isinstance(e, configparser.DuplicateSectionError):
        return f"section [{e.section}] appears twice; merge them"
    return str(e).splitlines()[0]


_SECTION_LINE = re.compile(r"\s*\[(?P<section>[^\]]+)\]")
_KEY_LINE = re.compile(r"(?P<key>[^\s=:;#\[][^=:]*?)\s*[=:]")


def ini_lines(text: str) -> dict[str, int]:
    """The line of each `section.key` set in valid INI text (configparser does not keep them)."""
    lines: dict[str, int] = {}
    section = None
    for number, line in enumerate(text.splitlines(), start=1):
        if m := _SECTION_LINE.match(line):
            section = m["section"].strip()
        elif section is not None and (m := _KEY_LINE.match(line)):
            lines[f"{section}.{_ini_parser().optionxform(m['key'])}"] = number
    return lines


def values_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Parse the `WTFLOW_*` variables that are set into `section.key` values."""
    return {s.name: s.parse(environ[s.env], source=s.env) for s in SETTINGS if s.env in environ}


# Variables wtflow sets in a node's environment or reads itself: not settings, but a nested
# `wtflow run` inside a node sees them, so they are never "unknown".
INTERNAL_VARIABLES = frozenset(
    {"WTFLOW_PROCESS_TOKENS", "WTFLOW_RUN_ID", "WTFLOW_NODE", "WTFLOW_ATTEMPT", "WTFLOW_ARTIFACTS",
     "WTFLOW_DEBUG"}
)  # fmt: skip
INTERNAL_PREFIXES = ("WTFLOW_PARAM_",)
_WARNED: set[str] = set()


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each `WTFLOW_*` variable that is neither a setting nor one wtflow sets,
    naming the closest setting (a typo such as WTFLOW_MAX_PARALEL would otherwise do nothing)."""
    known = [s.env for s in SETTINGS]
    warnings = []
    for name in sorted(environ):
        if not name.startswith("WTFLOW_") or name in known or name in INTERNAL_VARIABLES:
            continue
        if name.startswith(INTERNAL_PREFIXES):
            continue
        import difflib

        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
        warnings.append(f"{name} is not a wtflow setting and is ignored; {hint}")
    return warnings


# Greedy up to the last '@': a password with a raw '@' in it is masked whole (over-masking a
# stray '@' later in the URL is the safe way to be wrong).
_URL_PASSWORD = re.compile(r"^(?P<head>[^:/]+://[^:/@]*):(?P<password>.*)@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)[^&]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with its password (in the user part or the query) replaced by ***."""
    return _QUERY_PASSWORD.sub(r"\g<head>***", _URL_PASSWORD.sub(r"\g<head>:***@", url))
