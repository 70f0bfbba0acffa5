"""Loading the champion: a version without model files names itself and the remedy."""

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from stockcast.config import TrackingConfig
from stockcast.errors import RegistryError
from stockcast.registry.store import MlflowStore
from stockcast.serving.champion import load_champion


def test_a_hand_registered_champion_without_model_files_is_named(tracking_uri, tmp_path):
    store = MlflowStore.from_config(TrackingConfig(tracking_uri=tracking_uri))
    store.open()
    client = MlflowClient(tracking_uri)
    with mlflow.start_run(experiment_id=store.experiment_id()) as run:
        mlflow.log_text("not a model", "notes/readme.txt")
    client.create_registered_model("stockcast-HAND")
    mv = client.create_model_version("stockcast-HAND", f"runs:/{run.info.run_id}/notes",
                                     run.info.run_id)
    client.set_registered_model_alias("stockcast-HAND", "champion", mv.version)
    with pytest.raises(RegistryError, match=r"stockcast-HAND v1 \(the champion\) has no model "
                                            r"files.*stockcast promote"):
        load_champion("stockcast-HAND", store)
