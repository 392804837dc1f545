"""``citybot forms lint [PATH...] [--format json]``: check forms, exit 1 on any error.

Example::

    $ citybot forms lint forms/pothole.yaml
    forms/pothole.yaml:42: error [when-unknown-option] `size` has no option `huge`
        hint: did you mean `large`?
    1 error, 0 warnings in 1 file
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from forms_runtime.linter import LintIssue, lint_paths
from forms_runtime.loader import form_files, standard_forms_dir

__all__ = ["run"]


def _shown(path: str) -> str:
    """A path relative to the working directory when it is under it, as people type them."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths] or [standard_forms_dir()]
    issues = [
        LintIssue(_shown(i.path), i.line, i.rule, i.message, i.hint, i.severity)
        for i in lint_paths(paths)
    ]
    errors = sum(1 for i in issues if i.severity == "error")
    if args.format == "json":
        json.dump([asdict(i) for i in issues], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        for issue in issues:
            print(f"{issue.path}:{issue.line}: {issue.severity} [{issue.rule}] {issue.message}")
            if issue.hint:
                print(f"    hint: {issue.hint}")
        files = sum(len(form_files(p)) if p.is_dir() else 1 for p in paths)
        warnings = len(issues) - errors
        print(
            f"{_count(errors, 'error')}, {_count(warnings, 'warning')} in {_count(files, 'file')}"
        )
    return 1 if errors else 0
