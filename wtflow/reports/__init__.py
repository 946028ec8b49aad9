"""Reporters: listeners that write a run for CI and for other programs.

    junit.JUnitReport     --junit-xml PATH   one testsuite per workflow, a testcase per node
    github.GitHubLog      --ci github        groups, ::error annotations, the step summary
    gitlab.GitLabLog      --ci gitlab        collapsible sections
    events_log.EventsLog  --events PATH      every event as a JSON line

`reporters(config, environ, workflow)` builds the ones the settings ask for. The workflow is
passed so the CI logs learn its `Secret` values (to mask them) without the events carrying them.
A CI log says `replaces_console = True`: node output then goes through it, not the console.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from wtflow.config import Config
from wtflow.listeners import Listener
from wtflow.model import Secret, Workflow
from wtflow.reports.output import start_afresh

__all__ = ["ci_mode", "replaces_console", "reporters", "secrets_of", "start_afresh"]


def ci_mode(config: Config, environ: Mapping[str, str]) -> str:
    """'github', 'gitlab' or 'none': the setting, or under `auto` what the environment says."""
    mode = config.report.ci
    if mode != "auto":
        return mode
    if environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    if environ.get("GITLAB_CI") == "true":
        return "gitlab"
    return "none"


def secrets_of(workflow: Workflow | None) -> list[str]:
    """The `Secret` values in the nodes' environments."""
    if workflow is None:
        return []
    return [
        str(value)
        for node in workflow.nodes
        for value in (node.env or {}).values()
        if isinstance(value, Secret)
    ]


def reporters(config: Config, environ: Mapping[str, str], workflow: Workflow | None = None) -> list[Listener]:
    """The reporters the settings ask for, in the order they should hear events."""
    secrets: Iterable[str] = secrets_of(workflow)
    found: list[Listener] = []
    report = config.report
    if report.junit_xml is not None:  # before the events log: its path check may stop the run here
        from wtflow.reports.junit import JUnitReport

        found.append(JUnitReport(report.junit_xml, secrets))
    if report.events is not None:
        from wtflow.reports.events_log import EventsLog

        found.insert(0, EventsLog(report.events, secrets))  # first, so it hears each event first
    if report.html is not None:  # only runs that want the HTML report pay for its import
        from wtflow.reports.html import HtmlReport

        found.append(HtmlReport(report.html))
    mode = ci_mode(config, environ)
    show_output = config.run.console != "quiet"
    if mode == "github":
        from wtflow.reports.github import GitHubLog

        summary = environ.get("GITHUB_STEP_SUMMARY")
        found.append(
            GitHubLog(
                secrets=secrets, show_output=show_output, summary_path=Path(summary) if summary else None
            )
        )
    elif mode == "gitlab":
        from wtflow.reports.gitlab import GitLabLog

        found.append(GitLabLog(secrets=secrets, show_output=show_output))
    return found


def replaces_console(listeners: Iterable[Listener]) -> bool:
    """One of them prints node output itself (a CI log), so the console must not."""
    return any(getattr(x, "replaces_console", False) for x in listeners)
