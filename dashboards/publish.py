"""Exporting dashboard JSON files and pushing them to a Grafana through its HTTP API.

Why both: the file export feeds Grafana's file provisioning (``provisioning/dashboards/riskmon.yaml``),
the push serves a Grafana an operator cannot mount files into. Pushing is idempotent: the folder and
every dashboard have stable uids and dashboards are saved with ``overwrite: true``, so running it twice
leaves one copy of each, at the latest definition.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dashboards.catalog import DASHBOARDS
from dashboards.model import dashboard_json

FOLDER_UID = "riskmon"
FOLDER_TITLE = "riskmon"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "dashboard.schema.json"


def all_dashboards() -> list[dict[str, Any]]:
    """Every dashboard's JSON model."""
    return [dashboard_json(d) for d in DASHBOARDS]


def validate(dashboard: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` if a dashboard breaks ``schema/dashboard.schema.json``."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator(schema).validate(dashboard)


def export(directory: Path) -> list[Path]:
    """Write ``<uid>.json`` for every dashboard (validated first); returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for d in all_dashboards():
        validate(d)
        path = directory / f"{d['uid']}.json"
        path.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths


def push(url: str, token: str | None = None, *, folder_uid: str = FOLDER_UID,
         folder_title: str = FOLDER_TITLE, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Upsert the folder and every dashboard into the Grafana at ``url``; returns Grafana's replies.

    ``token`` is a service-account token (Bearer); without it, credentials in the URL are used.
    """
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError

    api = GrafanaApi.from_url(url=url, credential=token, timeout=timeout)
    try:
        api.folder.get_folder(folder_uid)
        api.folder.update_folder(folder_uid, title=folder_title, overwrite=True)
    except GrafanaClientError as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
        api.folder.create_folder(folder_title, uid=folder_uid)
    replies = []
    for d in all_dashboards():
        validate(d)
        replies.append(api.dashboard.update_dashboard({
            "dashboard": {**d, "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "riskmon dashboards push",
        }))
    return replies
