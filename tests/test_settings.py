"""Settings: one table, precedence, and errors that name the setting and where it came from."""

from __future__ import annotations

import pytest

from gateway.settings import Settings, SettingsError


def test_defaults():
    assert Settings.load() == Settings()


def test_precedence_file_then_environment_then_command_line():
    settings = Settings.load(file_section={"port": 9000, "max_page_size": 50},
                             environ={"PANORAMA_PORT": "9001", "PANORAMA_DEFAULT_COUNTRY": "gb"},
                             overrides={"port": 9002, "host": None})
    assert (settings.port, settings.max_page_size, settings.default_country) == (9002, 50, "GB")
    assert settings.host == "127.0.0.1"  # None on the command line means "not given"


@pytest.mark.parametrize("layer, value, needle", [
    ({"environ": {"PANORAMA_PORT": "eighty"}}, None, "PANORAMA_PORT from the environment"),
    ({"environ": {"PANORAMA_MAX_PAGE_SIZE": "0"}}, None, "at least 1"),
    ({"environ": {"PANORAMA_GRAPHIQL": "maybe"}}, None, "true or false"),
    ({"environ": {"PANORAMA_DEFAULT_COUNTRY": "France"}}, None, "two-letter"),
    ({"file_section": {"log_level": "loud"}}, None, "log_level from the config file"),
    ({"file_section": {"max_page_sise": 10}}, None, "unknown setting 'max_page_sise'"),
    ({"overrides": {"default_page_size": 500}}, None, "larger than max_page_size"),
    ({"environ": {"PANORAMA_REQUEST_DEADLINE_SECONDS": "0"}}, None, "positive number of seconds"),
    ({"file_section": {"read_retries": -1}}, None, "0 or more"),
])
def test_bad_values_name_the_setting(layer, value, needle):
    with pytest.raises(SettingsError) as err:
        Settings.load(**layer)
    assert needle in str(err.value)


def test_unrelated_environment_variables_are_ignored():
    assert Settings.load(environ={"PATH": "/bin", "PANORAMA_DEMO_CRM_TOKEN": "x"}) == Settings()


def test_a_bad_shared_cache_url_names_the_setting_and_never_echoes_it():
    with pytest.raises(SettingsError) as err:
        Settings.load(environ={"PANORAMA_CACHE_REDIS_URL": "http://user:s3cret@cache:6379/0"})
    message = str(err.value)
    assert "PANORAMA_CACHE_REDIS_URL" in message and "redis://host:port/db" in message
    assert "s3cret" not in message and "cache:6379" not in message
    assert Settings.load(environ={"PANORAMA_CACHE_REDIS_URL": "redis://127.0.0.1:6379/2"}
                         ).cache_redis_url == "redis://127.0.0.1:6379/2"
