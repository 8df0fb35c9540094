import pytest

from ferryman_operator.settings import OperatorSettings, SettingsError, load_settings


def test_defaults_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRYMAN_NATS_URL", "nats://a:4222, nats://b:4222")
    monkeypatch.setenv("FERRYMAN_WATCH_NAMESPACES", "apps, jobs")
    s = load_settings()
    assert s.nats_servers == ["nats://a:4222", "nats://b:4222"]
    assert s.namespaces == ["apps", "jobs"]
    assert s.workers_nats_url == "nats://a:4222, nats://b:4222"
    assert OperatorSettings(worker_nats_url="nats://w:4222").workers_nats_url == "nats://w:4222"


def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRYMAN_NATS_URL", "http://nats:4222")
    monkeypatch.setenv("FERRYMAN_SCALE_INTERVAL", "soon")
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert "FERRYMAN_NATS_URL" in text
    assert "not a NATS URL" in text
    assert "FERRYMAN_SCALE_INTERVAL" in text
