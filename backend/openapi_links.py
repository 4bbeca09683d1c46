"""OpenAPI links: which ids an answer hands to which next calls.

A reserved task's ``id`` leads to playing, rendering and releasing it; a render's
``render_id`` to its state, its file and its cancel; a job's ``id`` to it and its cancel; a
run's ``fid`` to it and its cancel; a named token's ``name`` to its revocation. Written
into the document, they let a generated client (and schemathesis's stateful phase) follow
the API as an operator does, instead of guessing ids that do not exist.
"""

from __future__ import annotations

from typing import Any

#: (method, path, status) of the answer -> its links: name -> (method, path, parameters).
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("post", "/api/v1/tasks", "201"): {
        f"{verb}Task": (method, path, {"task_id": "$response.body#/id"})
        for verb, method, path in (
            ("Get", "get", "/api/v1/tasks/{task_id}"),
            ("Play", "post", "/api/v1/tasks/{task_id}/play"),
            ("Stop", "post", "/api/v1/tasks/{task_id}/stop"),
            ("Render", "post", "/api/v1/tasks/{task_id}/render"),
            ("Release", "post", "/api/v1/tasks/{task_id}/release"),
        )
    },
    ("post", "/api/v1/tasks/{task_id}/render", "202"): {
        f"{verb}Render": (method, path, {"task_id": "$request.path.task_id",
                                          "render_id": "$response.body#/render_id"})
        for verb, method, path in (
            ("Get", "get", "/api/v1/tasks/{task_id}/renders/{render_id}"),
            ("Download", "get", "/api/v1/tasks/{task_id}/renders/{render_id}/file"),
            ("Cancel", "post", "/api/v1/tasks/{task_id}/renders/{render_id}/cancel"),
        )
    },
    ("post", "/api/v1/jobs", "201"): {
        "GetJob": ("get", "/api/v1/jobs/{job_id}", {"job_id": "$response.body#/id"}),
        "CancelJob": ("post", "/api/v1/jobs/{job_id}/cancel", {"job_id": "$response.body#/id"}),
    },
    ("post", "/node/v1/runs", "201"): {
        "GetRun": ("get", "/node/v1/runs/{fid}", {"fid": "$response.body#/fid"}),
        "CancelRun": ("post", "/node/v1/runs/{fid}/cancel", {"fid": "$response.body#/fid"}),
    },
    ("post", "/api/v1/tokens", "201"): {
        "RevokeToken": ("delete", "/api/v1/tokens/{name}", {"name": "$response.body#/name"}),
    },
}


def _ref(method: str, path: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def add(document: dict[str, Any]) -> dict[str, Any]:
    """The links of :data:`LINKS` whose operations this document has."""
    paths = document.get("paths", {})
    for (method, path, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        response["links"] = {
            name: {"operationRef": _ref(target_method, target), "parameters": parameters}
            for name, (target_method, target, parameters) in links.items()
            if target_method in paths.get(target, {})
        }
    return document
