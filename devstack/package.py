"""`make package`: write the deployable templates to build/ and lint them.

build/app/  the Chalice application (SAM) merged with infra/chalice-merge.yaml
build/resources.yaml  the table, queues and alarms stack
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package(out: Path, stage: str) -> list[Path]:
    bin_dir = Path(sys.executable).parent
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    app_dir = out / "app"
    # Packaging reads no AWS account; a region is only needed to render ARNs.
    env = {"AWS_DEFAULT_REGION": "us-east-1", **os.environ}
    subprocess.run(
        [str(bin_dir / "chalice"), "package", "--stage", stage, "--merge-template",
         str(ROOT / "infra" / "chalice-merge.yaml"), str(app_dir)],
        cwd=ROOT, check=True, env=env,
    )
    shutil.copy(ROOT / "infra" / "resources.yaml", out / "resources.yaml")
    templates = [out / "resources.yaml", app_dir / "sam.yaml"]
    subprocess.run([str(bin_dir / "cfn-lint"), *map(str, templates)], check=True)
    return templates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--stage", default="prod")
    args = parser.parse_args()
    for template in package(args.out, args.stage):
        print(f"wrote {template.relative_to(ROOT) if template.is_relative_to(ROOT) else template} (cfn-lint passed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
