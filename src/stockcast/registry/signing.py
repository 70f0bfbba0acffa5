"""Signing served models: a shared tracking store is a trust boundary, because loading a
pyfunc model unpickles it (runs its code). With a key configured (``STOCKCAST_MODEL_KEY``),
every model this project logs carries an HMAC-SHA256 of its files as a run tag, and a champion
is loaded only after the signature checks out: whoever can register versions and move aliases
but does not hold the key cannot make the workers run their code."""

from __future__ import annotations

import hashlib
import hmac
import tempfile
from pathlib import Path

import mlflow

from stockcast.errors import RegistryError
from stockcast.registry.store import MlflowStore

SIGNATURE_TAG = "stockcast.model_hmac"
# Written by MLflow into every download of a registered version (its name and version): not
# part of what was logged, and only read as YAML.
_UNSIGNED = {"registered_model_meta"}


def digest_dir(path: Path) -> bytes:
    """SHA-256 over every file's relative path and bytes, in a fixed order."""
    h = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file() and p.name not in _UNSIGNED):
        h.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes() + b"\0")
    return h.digest()


def sign_digest(digest: bytes, key: str) -> str:
    """The HMAC-SHA256 (hex) of a SHA-256 digest under ``key``."""
    return hmac.new(key.encode(), digest, hashlib.sha256).hexdigest()


def sign(model_dir: Path, key: str) -> str:
    """The HMAC-SHA256 (hex) of a model directory under ``key``."""
    return sign_digest(digest_dir(model_dir), key)


def sign_bytes(data: bytes, key: str) -> str:
    """The HMAC-SHA256 (hex) of one file's bytes under ``key``."""
    return sign_digest(hashlib.sha256(data).digest(), key)


def sign_logged_model(model_uri: str, run_id: str, key: str, store: MlflowStore) -> None:
    """Tag the run with the signature of the model just logged at ``model_uri`` (called
    inside the logging step, under its retry policy)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp,
                                                    tracking_uri=store.tracking_uri)
        store.client.set_tag(run_id, SIGNATURE_TAG, sign(Path(local), key))


def verified_download(name: str, version: str, key: str | None, store: MlflowStore,
                      dst: Path) -> Path:
    """Download a registered version's model files; with a key, refuse them unless the
    signature on its run matches (before anything is unpickled)."""
    local = Path(store.call("download", lambda: mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}/{version}", dst_path=str(dst),
        tracking_uri=store.tracking_uri)))
    if key:
        expected = store.call("reading the signature", lambda: _signature_of(name, version,
                                                                             store))
        if not hmac.compare_digest(expected, sign(local, key)):
            raise RegistryError(
                f"{name} v{version} is not signed with this deployment's STOCKCAST_MODEL_KEY "
                f"({'no signature' if not expected else 'signature mismatch'}): refusing to load "
                "(unpickle) it. Promote a version this project logged, or check the key.")
    return local


def _signature_of(name: str, version: str, store: MlflowStore) -> str:
    """The signature tag on the run a registered version came from ("" if none)."""
    run_id = store.client.get_model_version(name, version).run_id
    return store.client.get_run(run_id).data.tags.get(SIGNATURE_TAG, "") if run_id else ""
