from latentline.streams.settings import SETTINGS_DOC, Settings, markdown_table, settings_env


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


def test_settings_doc_documents_every_setting():
    assert markdown_table() in SETTINGS_DOC.read_text(), "docs/settings.md is stale: run make docs"
