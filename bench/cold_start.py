"""Cold start: the time to import each function's handler module, against plain boto3.

For every function in template.yaml, in fresh processes (at least 10 each, interleaved with the
baseline so that machine noise hits both alike):
- handler: import the handler module with the environment the template gives the function and the
  layer as `sam build` made it (.aws-sam/build/CommonLayer/python: compiled config and bytecode);
- baseline: `import boto3` and create the same boto3 clients the handler module creates.
Prints the median of each and their ratio; the target is at most 1.15x.

    make build && .venv/bin/python bench/cold_start.py [--runs N]     (or: make bench)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
BUILT_LAYER = ROOT / ".aws-sam" / "build" / "CommonLayer" / "python"

# Runs in the child: times one import, reports the seconds and the boto3 services it created.
_CHILD = r"""
import json, sys, time
mode, target, services = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
created = []
if mode == "handler":
    started = time.perf_counter()
    import botocore.session
    original = botocore.session.Session.create_client
    def recording(self, service_name, *args, **kwargs):
        created.append(service_name)
        return original(self, service_name, *args, **kwargs)
    botocore.session.Session.create_client = recording
    sys.path.insert(0, target)
    import app
else:
    started = time.perf_counter()
    import boto3
    clients = [boto3.client(name) for name in services]
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "services": created}))
"""


def _placeholder(value: Any, name: str, parameters: dict[str, Any]) -> str:
    """Template values resolved at deploy time: parameter defaults, else stand-in strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        default = parameters.get(value["Ref"], {}).get("Default")
        return str(default) if default is not None else f"{value['Ref']}-{name.lower()}"
    return f"resolved-{name.lower()}"


def functions(template_path: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    template = cfn_yaml.loads(template_path.read_text())
    global_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    found = {}
    for name, resource in template["Resources"].items():
        # Fn::ForEach loops (ECR repositories, policies) make no function.
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        variables = {**global_env, **properties.get("Environment", {}).get("Variables", {})}
        parameters = template.get("Parameters", {})
        environment = {key: _placeholder(value, key, parameters) for key, value in variables.items()}
        found[name] = (ROOT / properties["CodeUri"], environment)
    return found


def _run(mode: str, code_dir: Path, environment: dict[str, str], services: list[str], layer: Path) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(layer),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        **environment,
    }
    output = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(code_dir), json.dumps(services)],
        env=env,
        capture_output=True,
        text=True,
        cwd=code_dir,
    )
    if output.returncode:
        raise SystemExit(f"{mode} import failed in {code_dir}:\n{output.stderr}")
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11, help="fresh processes per measurement (at least 10)")
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--target", type=float, default=1.15)
    parser.add_argument("--layer", type=Path, default=BUILT_LAYER, help="the built layer's python/ folder")
    args = parser.parse_args()
    runs = max(args.runs, 10)
    layer: Path = args.layer
    if not (layer / "ecr_pipeline").is_dir():
        raise SystemExit(f"no built layer at {layer}: run `make build` first")

    print(f"cold start: median of {runs} fresh processes per row; baseline = import boto3 + the same clients")
    print(f"{'function':<22} {'handler ms':>10} {'baseline ms':>11} {'ratio':>6}  clients")
    worst = 0.0
    for name, (code_dir, environment) in functions(args.template).items():
        services = _run("handler", code_dir, environment, [], layer)["services"]  # warms the disk cache too
        _run("baseline", code_dir, environment, services, layer)
        handler_times, baseline_times = [], []
        for _ in range(runs):
            handler_times.append(_run("handler", code_dir, environment, [], layer)["seconds"])
            baseline_times.append(_run("baseline", code_dir, environment, services, layer)["seconds"])
        handler_ms = statistics.median(handler_times) * 1000
        baseline_ms = statistics.median(baseline_times) * 1000
        ratio = handler_ms / baseline_ms
        worst = max(worst, ratio)
        print(f"{name:<22} {handler_ms:>10.1f} {baseline_ms:>11.1f} {ratio:>5.2f}x  {','.join(services)}")
    verdict = "within" if worst <= args.target else "over"
    print(f"worst ratio {worst:.2f}x: {verdict} the {args.target:.2f}x target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
