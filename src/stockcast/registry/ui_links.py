"""Links into the MLflow UI that open on what stockcast logs. MLflow 3.17's UI opens every
experiment on its GenAI overview unless the browser's stored workflow type (localStorage
``mlflow.workflowType``, "genai" in a fresh browser) or the page's ``workflowType`` query
parameter says otherwise; the experiment's ``mlflow.experimentKind`` tag is not read then.
These links carry the parameter, so they open on the runs table in any browser."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

WORKFLOW_QUERY = "workflowType=machine_learning"


def experiment_url(base: str, experiment_id: str) -> str:
    """The experiment's runs table."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{WORKFLOW_QUERY}"


def model_url(base: str, name: str) -> str:
    """A registered model's versions, with their decisions."""
    return f"{base.rstrip('/')}/#/models/{name}?{WORKFLOW_QUERY}"


def ui_links(tracking_uri: str, base: str) -> list[str]:
    """One line per stockcast experiment and registered model: what to open in the UI."""
    client = MlflowClient(tracking_uri)
    lines = [f"  {e.name}: {experiment_url(base, e.experiment_id)}"
             for e in client.search_experiments(filter_string="name LIKE 'stockcast%'")]
    lines += [f"  {m.name}: {model_url(base, m.name)}"
              for m in client.search_registered_models(filter_string="name LIKE 'stockcast-%'")]
    if not lines:
        return [f"no stockcast runs yet (run `make run-flow`); the UI: "
                f"{base.rstrip('/')}/#/experiments?{WORKFLOW_QUERY}"]
    return ["open (these links show the runs table, not MLflow's GenAI overview):", *lines]


def main(argv: list[str] | None = None) -> int:
    """``python -m stockcast.registry.ui_links TRACKING_URI [BASE_URL]`` (used by `make ui`):
    the base is the UI's address; a served MLflow (``http(s)://``) is its own."""
    import sys

    args = argv if argv is not None else sys.argv[1:]
    if not args or (len(args) == 1 and not args[0].startswith(("http://", "https://"))):
        print("usage: python -m stockcast.registry.ui_links TRACKING_URI [UI_URL] (the UI's "
              "address is needed unless the tracking URI is a served MLflow, http(s)://)",
              file=sys.stderr)
        return 2
    uri, base = args[0], args[1] if len(args) > 1 else args[0]
    print("\n".join(ui_links(uri, base)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
