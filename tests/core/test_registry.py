import json

import pytest

from chatbot.core.registry import BASE, Registry, RegistryError


def make_version(reg: Registry, marker: str, status: str = "candidate"):
    staging = reg.staging()
    (staging / "adapter_model.safetensors").write_text(marker)
    return reg.commit(staging, status=status)


def test_commit_promote_rollback(tmp_path):
    reg = Registry(tmp_path)
    assert reg.current() == BASE and reg.names() == []
    v1 = make_version(reg, "one")
    v2 = make_version(reg, "two")
    assert [v1.name, v2.name] == ["v0001", "v0002"]
    reg.promote("v0001")
    reg.promote("v0002")
    assert reg.current() == "v0002" and reg.get("v0002").status == "promoted"
    assert reg.rollback() == "v0001" and reg.current() == "v0001"
    assert reg.rollback() == BASE and reg.current() == BASE
    assert reg.current_path() is None


def test_staging_of_killed_run_is_not_a_version(tmp_path):
    reg = Registry(tmp_path)
    half = reg.staging()
    (half / "adapter_model.safetensors").write_text("half written")
    assert reg.names() == []
    assert reg.clean_staging() == 1 and not half.exists()
    assert make_version(reg, "x").name == "v0001"


def test_unknown_version_is_named(tmp_path):
    reg = Registry(tmp_path)
    make_version(reg, "x")
    with pytest.raises(RegistryError, match="no version 'v0009'.*v0001"):
        reg.promote("v0009")
    with pytest.raises(RegistryError):
        reg.get("../etc")


def test_rejected_status_and_reasons(tmp_path):
    reg = Registry(tmp_path)
    v = make_version(reg, "bad")
    reg.set_status(v.name, "rejected", ["general QA dropped 5 points"])
    got = reg.get(v.name)
    assert got.status == "rejected" and got.reasons == ["general QA dropped 5 points"]
    assert json.loads((got.path / "status.json").read_text())["status"] == "rejected"
