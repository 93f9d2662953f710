"""CI pipeline checks no offline validator covers: Jenkinsfile structure, and "does CI run the tests".

Pure functions over ``{path: content}``; no I/O.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

import yaml

from agents.review import groovy
from agents.review.findings import finding
from agents.review.locate import documents
from agents.review.routes import is_github_workflow, is_gitlab_ci, is_jenkinsfile
from agents.review.secrets_scan import jenkins_secret_literals
from contracts.payloads import Finding

JENKINS_TOOL = "jenkinsfile"
CI_TOOL = "ci-runs-tests"


def jenkinsfile(path: str, content: str) -> list[Finding]:
    """Structural check of a declarative Jenkinsfile (docs/artifacts.md): ``pipeline { agent; options {
    timeout }; stages { stage }; post { always; failure } }`` and secrets only through ``credentials()``."""
    text = groovy.strip_comments(content)
    pipeline = groovy.block(text, "pipeline")
    if pipeline is None:
        return [_jenkins(path, "jenkins-pipeline", "no declarative `pipeline { ... }` block", 1)]
    line = pipeline.line(text)
    out: list[Finding] = []
    if not re.search(r"(?<![\w.])agent\b", pipeline.body):
        out.append(_jenkins(path, "jenkins-agent", "the pipeline declares no `agent`", line))
    options = next(groovy.child_blocks(pipeline, "options"), None)
    if options is None or not re.search(r"\btimeout\s*\(", options.body):
        at = options.line(text) if options else line
        out.append(
            _jenkins(path, "jenkins-timeout", "no `options { timeout(...) }`: a hung build never ends", at)
        )
    stages = next(groovy.child_blocks(pipeline, "stages"), None)
    if stages is None or not re.search(r"\bstage\s*\(", stages.body):
        out.append(_jenkins(path, "jenkins-stages", "no `stages { stage(...) { ... } }`", line))
    post = next(groovy.top_level_blocks(pipeline, "post"), None)
    for condition in ("always", "failure"):
        if post is None or next(groovy.child_blocks(post, condition), None) is None:
            at = post.line(text) if post else line
            out.append(_jenkins(path, "jenkins-post", f"no `post {{ {condition} {{ ... }} }}` section", at))
    for name, at in jenkins_secret_literals(content):
        message = f"`{name}` is not set through credentials('<id>')"
        out.append(_jenkins(path, "jenkins-credentials", message, at))
    return out


def _jenkins(path: str, rule: str, message: str, line: int) -> Finding:
    fixes = {
        "jenkins-credentials": "use `NAME = credentials('jenkins-credential-id')`",
        "jenkins-timeout": "add `options { timeout(time: 30, unit: 'MINUTES') }`",
    }
    return finding(path, rule, message, line=line, tool=JENKINS_TOOL, fix=fixes.get(rule, ""))


# --- does CI run the project's tests? -------------------------------------------------------------


def ci_runs_tests(files: Mapping[str, str], test_command: list[str]) -> list[Finding]:
    """One HIGH finding per CI system present (GitHub Actions, GitLab CI, Jenkins) whose scripts never run
    ``test_command`` (with all its arguments; ``python -m pytest`` and ``pytest`` count as the same).
    No CI file, or an empty command: nothing to check, ``[]``."""
    wanted = _normalise(test_command)
    if not wanted:
        return []
    systems: dict[str, list[str]] = {"GitHub Actions": [], "GitLab CI": [], "Jenkins": []}
    for path in sorted(files):
        if is_github_workflow(path):
            systems["GitHub Actions"].append(path)
        elif is_gitlab_ci(path):
            systems["GitLab CI"].append(path)
        elif is_jenkinsfile(path):
            systems["Jenkins"].append(path)
    shown = shlex.join(test_command)
    out: list[Finding] = []
    for system, paths in systems.items():
        if not paths:
            continue
        scripts = [script for path in paths for script in _scripts(path, files[path])]
        if not any(_runs(script, wanted) for script in scripts):
            out.append(
                finding(
                    paths[0],
                    "ci-runs-tests",
                    f"{system} never runs the project's test command `{shown}`",
                    tool=CI_TOOL,
                    fix=f"add a test job/stage running `{shown}` before the image is built",
                )
            )
    return out


def _scripts(path: str, content: str) -> Iterator[str]:
    """The shell scripts a CI file runs."""
    if is_jenkinsfile(path):
        yield from _jenkins_scripts(content)
        return
    try:
        for data, _node in documents(content):
            if is_github_workflow(path):
                yield from _github_scripts(data)
            else:
                yield from _gitlab_scripts(data)
    except yaml.YAMLError:
        return


def _github_scripts(data: Any) -> Iterator[str]:
    jobs = data.get("jobs") if isinstance(data, dict) else None
    for job in jobs.values() if isinstance(jobs, dict) else ():
        steps = job.get("steps") if isinstance(job, dict) else None
        for step in steps if isinstance(steps, list) else ():
            if isinstance(step, dict) and isinstance(step.get("run"), str):
                yield step["run"]


def _gitlab_scripts(data: Any) -> Iterator[str]:
    if not isinstance(data, dict):
        return
    for job in data.values():
        if isinstance(job, dict):
            for key in ("before_script", "script"):
                yield from _flatten(job.get(key))


def _flatten(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _flatten(item)


_JENKINS_STEP = re.compile(
    r"""\b(?:sh|bat|pwsh|powershell)\s*\(?\s*(?:script\s*:\s*)?(?P<s>'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'[^'\n]*'|"[^"\n]*")"""
)


def _jenkins_scripts(content: str) -> Iterator[str]:
    for match in _JENKINS_STEP.finditer(groovy.strip_comments(content)):
        literal = match.group("s")
        quote = 3 if literal[:3] in ("'''", '"""') else 1
        yield literal[quote:-quote]


def _normalise(tokens: list[str]) -> list[str]:
    """Drop ``VAR=value`` prefixes and a ``python -m`` prefix (``python3 -m pytest`` is ``pytest``)."""
    rest = list(tokens)
    while rest and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", rest[0]):
        rest.pop(0)
    if len(rest) >= 3 and re.fullmatch(r"python[0-9.]*", PurePosixPath(rest[0]).name) and rest[1] == "-m":
        rest = rest[2:]
    return rest


def _commands(script: str) -> Iterator[list[str]]:
    """Simple commands of a script: lines (continuations joined) split at ``&&``, ``||``, ``;``, ``|``."""
    for line in script.replace("\\\n", " ").splitlines():
        try:
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError:
            tokens = line.split()
        command: list[str] = []
        for token in [*tokens, ";"]:
            if token in ("&&", "||", ";", "|", "&", ";;"):
                if command:
                    yield command
                command = []
            else:
                command.append(token)


def _runs(script: str, wanted: list[str]) -> bool:
    """True if a command of ``script`` runs ``wanted[0]`` with every argument of ``wanted`` after it."""
    program, arguments = wanted[0], wanted[1:]
    for command in _commands(script):
        tokens = _normalise(command)
        for index, token in enumerate(tokens):
            if token == program or _normalise(tokens[index:])[:1] == [program]:
                after = tokens[index + 1 :]
                if all(argument in after for argument in arguments):
                    return True
    return False
