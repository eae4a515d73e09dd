"""`make package`: write the deployable templates to build/ and lint them.

build/app/  the Chalice application (SAM) merged with infra/chalice-merge.yaml
build/resources.yaml  the table, queues and alarms stack
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from devstack.supervisor import executable

ROOT = Path(__file__).resolve().parents[1]
MERGE_TEMPLATE = ROOT / "infra" / "chalice-merge.yaml"
RESOURCES_TEMPLATE = ROOT / "infra" / "resources.yaml"
# Informational checks too: they are the ones that ask for retention periods and deletion policies.
CFN_LINT_OPTIONS = ("--include-checks", "I", "--format", "json")


class PackageError(RuntimeError):
    """`chalice package` or `cfn-lint` could not run, or found the templates wanting."""


def chalice_package(project: Path, out: Path, stage: str, merge_template: Path | None = MERGE_TEMPLATE) -> Path:
    """`chalice package` of the app in `project` into `out`; returns the SAM template it wrote."""
    # Packaging calls no AWS API: a region only renders ARNs, and the metadata service is never asked.
    env = {"AWS_DEFAULT_REGION": "us-east-1", **os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
    command = [executable("chalice"), "package", "--stage", stage]
    if merge_template is not None:
        command += ["--merge-template", str(merge_template)]
    result = subprocess.run([*command, str(out)], cwd=project, env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise PackageError(f"chalice package failed:\n{result.stdout}{result.stderr}")
    # A YAML merge template switches chalice to YAML output.
    return out / ("sam.yaml" if merge_template is not None and merge_template.suffix in (".yaml", ".yml")
                  else "sam.json")


def package_app(out: Path, stage: str) -> list[Path]:
    """The two deployable templates in `out`: resources.yaml and app/sam.yaml."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sam = chalice_package(ROOT, out / "app", stage)
    shutil.copy(RESOURCES_TEMPLATE, out / "resources.yaml")
    return [out / "resources.yaml", sam]


def lint(templates: Sequence[Path]) -> dict[Path, list[str]]:
    """One `cfn-lint` run over all `templates` (its rule set loads once): each one's problems, if any."""
    result = subprocess.run([executable("cfn-lint"), *CFN_LINT_OPTIONS, "--", *map(str, templates)],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    try:
        matches = json.loads(result.stdout or "[]")
    except ValueError:
        raise PackageError(f"cfn-lint failed (exit {result.returncode}):\n{result.stdout}{result.stderr}") from None
    found: dict[Path, list[str]] = {Path(template).resolve(): [] for template in templates}
    for match in matches:
        line = match["Location"]["Start"]["LineNumber"]
        found[Path(match["Filename"]).resolve()].append(f"line {line}: {match['Rule']['Id']} {match['Message']}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--stage", default="prod")
    args = parser.parse_args()
    templates = package_app(args.out, args.stage)
    problems = lint(templates)
    for template in templates:
        shown = template.relative_to(ROOT) if template.is_relative_to(ROOT) else template
        found = problems[template.resolve()]
        print(f"wrote {shown} " + (f"(cfn-lint found {len(found)} problems)" if found else "(cfn-lint passed)"))
        for problem in found:
            print(f"  {problem}")
    return 1 if any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
