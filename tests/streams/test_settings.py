from pathlib import Path

from streams.settings import Settings, markdown_table, settings_env

README = Path(__file__).resolve().parents[2] / "README.md"


def test_environment_prefix_sets_fields(monkeypatch):
    monkeypatch.setenv("LATENTLINE_BATCH_MAX_SIZE", "7")
    monkeypatch.setenv("LATENTLINE_IMAGE_FORMATS", '["PNG"]')
    settings = Settings()
    assert settings.batch_max_size == 7
    assert settings.image_formats == frozenset({"PNG"})


def test_settings_env_reproduces_settings(monkeypatch):
    original = Settings(batch_max_size=3, store_secret_key="s3cr3t", partitions=2)
    for key, value in settings_env(original).items():
        monkeypatch.setenv(key, value)
    assert Settings() == original


def test_bootstrap_servers_from_faust_url():
    assert Settings(broker_url="kafka://a:1;kafka://b:2").bootstrap_servers() == "a:1,b:2"


def test_readme_documents_every_setting():
    assert markdown_table() in README.read_text(), "README settings table is stale: run make docs"
