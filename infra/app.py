"""CDK app entry: `npx cdk synth` / `npx cdk deploy` run `python -m infra.app` (see cdk.json).

cdk-nag's AwsSolutions checks run on every synth; an unsuppressed finding is an error.
"""

from __future__ import annotations

import os

# jsii reads these when it starts Node, i.e. at the first aws_cdk import below. The dev machines run
# Node 20 (see the handbook's FACTS.md); the banners say so on every synth and bury real output.
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from aws_cdk import App, Aspects, Environment, Tags  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.assets import BUILD_DIR, build_assets  # noqa: E402
from infra.description import APP_NAME  # noqa: E402
from infra.stack import BoomerangStack  # noqa: E402

STACK_NAME = "Boomerang"
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context (feature flags): what the CDK CLI passes the app in CDK_CONTEXT_JSON."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def build_app(
    *,
    context: Mapping[str, Any] | None = None,
    build_dir: Path = BUILD_DIR,
    with_dependencies: bool | None = None,
    nag: bool = True,
    account: str | None = None,
    region: str | None = None,
) -> tuple[App, BoomerangStack]:
    """The app and its one stack. with_dependencies=None reads BOOMERANG_ASSETS_NO_DEPS.

    Without context and outside the CDK CLI (`python -m infra.app`), cdk.json's feature flags apply
    anyway, so every way of synthesising gives the same template.
    """
    if context is None and "CDK_CONTEXT_JSON" not in os.environ:
        context = cdk_json_context()
    app = App(context=dict(context) if context else None)
    assets = build_assets(build_dir, with_dependencies=with_dependencies)
    stack = BoomerangStack(
        app,
        STACK_NAME,
        assets=assets,
        description="Boomerang: retention messaging engine (events in, lifecycle journeys out)",
        # Set by the CDK CLI from the current credentials; absent (environment-agnostic) otherwise.
        env=Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
        ),
    )
    Tags.of(stack).add("app", APP_NAME)
    if nag:
        Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
