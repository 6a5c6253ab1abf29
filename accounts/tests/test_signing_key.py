"""The signing key: generated once and kept private in the embedded default, required in production."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = (
    "import django, json; django.setup(); from oauth2_provider.settings import oauth2_settings as s;"
    "print(json.dumps(s.OIDC_RSA_PRIVATE_KEY))"
)


def run(env: dict) -> subprocess.CompletedProcess:
    keep = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(
        [sys.executable, "-c", CODE],
        cwd=ROOT,
        env={**keep, "DJANGO_SETTINGS_MODULE": "sbt_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_default_generates_the_key_once_with_mode_0600(tmp_path):
    first = run({"SBT_VAR_DIR": str(tmp_path)})
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "oidc_rsa_private_key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(first.stdout).startswith("-----BEGIN PRIVATE KEY-----")
    second = run({"SBT_VAR_DIR": str(tmp_path)})
    assert json.loads(second.stdout) == json.loads(first.stdout), "tokens must survive a restart"


def test_the_environment_provides_the_key(tmp_path):
    key = json.loads(run({"SBT_VAR_DIR": str(tmp_path)}).stdout)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    result = run({"SBT_VAR_DIR": str(other_dir), "OIDC_RSA_PRIVATE_KEY": key})
    assert json.loads(result.stdout).strip() == key.strip()
    assert not (other_dir / "oidc_rsa_private_key.pem").exists()
