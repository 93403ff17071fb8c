"""Hub telemetry is always off; runs on local models are offline, and the user's choice stands."""

from __future__ import annotations

import os

import pytest

from tamis.train.offline import OFFLINE_VARS, is_local, offline_if_local


def test_importing_tamis_turns_telemetry_off() -> None:
    import tamis

    for key in tamis.TELEMETRY_OFF:
        assert os.environ[key] == "1"
    from huggingface_hub import constants

    assert constants.HF_HUB_DISABLE_TELEMETRY is True


def test_offline_only_for_local_models(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in OFFLINE_VARS:
        monkeypatch.delenv(key, raising=False)
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    assert is_local("tiny") and is_local(str(tmp_path)) and not is_local("org/name")
    with offline_if_local("tiny", str(tmp_path), None) as offline:
        assert offline and all(os.environ[k] == "1" for k in OFFLINE_VARS)
        assert constants.HF_HUB_OFFLINE is True
    assert not any(k in os.environ for k in OFFLINE_VARS) and constants.HF_HUB_OFFLINE is before
    with offline_if_local("tiny", "org/name") as offline:  # a hub id: the user asked for it
        assert not offline and not any(k in os.environ for k in OFFLINE_VARS)


def test_explicit_user_setting_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in OFFLINE_VARS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with offline_if_local("tiny"):
        assert os.environ["HF_HUB_OFFLINE"] == "0"
        assert "TRANSFORMERS_OFFLINE" not in os.environ


def test_telemetry_off_even_when_the_hub_was_imported_first() -> None:
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK", "DISABLE_TELEMETRY")
    }
    code = (
        "import huggingface_hub.constants as c; before = c.HF_HUB_DISABLE_TELEMETRY; "
        "import tamis; print(before, c.HF_HUB_DISABLE_TELEMETRY)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "True"], out.stderr
