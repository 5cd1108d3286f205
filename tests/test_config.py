"""`gateway.config`: `Settings.from_env` over plain dicts, and errors that name the variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config import FLAG_VARIABLES, NUMERIC_VARIABLES, ConfigError, Settings

EU = "https://api.kombo.dev/v1"
US = "https://api.us.kombo.dev/v1"
CA = "https://api.ca.kombo.dev/v1"


def test_defaults_run_the_sandbox_against_the_eu_host_with_a_30s_cache() -> None:
    settings = Settings.from_env({})

    assert settings.api_key is None
    assert settings.sandbox_mode is True
    assert settings.base_url == EU
    assert settings.integration_id is None
    assert settings.cache_ttl == 30.0


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/usr/bin", "INTEGRATION_ID": "x"}) == Settings.from_env({})


@pytest.mark.parametrize(
    ("region", "base_url"),
    [
        pytest.param("eu", EU, id="eu"),
        pytest.param("us", US, id="us"),
        pytest.param("ca", CA, id="ca"),
        pytest.param("US", US, id="uppercase"),
        pytest.param("  us ", US, id="whitespace"),
        pytest.param("", EU, id="empty-is-default"),
    ],
)
def test_region_selects_the_kombo_host(region: str, base_url: str) -> None:
    assert Settings.from_env({"KOMBO_REGION": region}).base_url == base_url


@pytest.mark.parametrize("region", [pytest.param("mars", id="mars"), pytest.param("de", id="de")])
def test_unknown_region_is_a_config_error_naming_the_variable(region: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"KOMBO_REGION": region})

    message = str(info.value)
    assert "KOMBO_REGION" in message
    assert region in message
    assert "us" in message  # says what is allowed


@pytest.mark.parametrize(
    ("environ", "base_url"),
    [
        pytest.param(
            {"KOMBO_BASE_URL": "http://127.0.0.1:8010/v1"},
            "http://127.0.0.1:8010/v1",
            id="override",
        ),
        pytest.param(
            {"KOMBO_REGION": "us", "KOMBO_BASE_URL": "https://kombo.internal/v1"},
            "https://kombo.internal/v1",
            id="wins-over-region",
        ),
        pytest.param(
            {"KOMBO_BASE_URL": "https://kombo.internal/v1/"},
            "https://kombo.internal/v1",
            id="trailing-slash",
        ),
        pytest.param(
            {"KOMBO_BASE_URL": "https://kombo.internal/v1///"},
            "https://kombo.internal/v1",
            id="trailing-slashes",
        ),
        pytest.param(
            {"KOMBO_BASE_URL": "  https://kombo.internal/v1  "},
            "https://kombo.internal/v1",
            id="whitespace",
        ),
        pytest.param({"KOMBO_BASE_URL": ""}, EU, id="empty-is-default"),
    ],
)
def test_base_url_overrides_the_region(environ: dict[str, str], base_url: str) -> None:
    assert Settings.from_env(environ).base_url == base_url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("api.kombo.dev/v1", id="no-scheme"),
        pytest.param("ftp://api.kombo.dev/v1", id="ftp"),
        pytest.param("/v1", id="relative"),
        pytest.param("https//api.kombo.dev/v1", id="missing-colon"),
        pytest.param("https://", id="no-host"),
        pytest.param("http:///v1", id="empty-host"),
    ],
)
def test_bad_base_url_is_a_config_error_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"KOMBO_BASE_URL": url})

    assert "KOMBO_BASE_URL" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "ttl"),
    [
        pytest.param("0", 0.0, id="zero-turns-cache-off"),
        pytest.param("5", 5.0, id="int"),
        pytest.param("2.5", 2.5, id="float"),
        pytest.param(" 60 ", 60.0, id="whitespace"),
        pytest.param("", 30.0, id="empty-is-default"),
    ],
)
def test_cache_ttl(raw: str, ttl: float) -> None:
    assert Settings.from_env({"GATEWAY_CACHE_TTL": raw}).cache_ttl == ttl


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("-1", id="negative"),
        pytest.param("-0.5", id="negative-fraction"),
        pytest.param("thirty", id="not-a-number"),
        pytest.param("30s", id="unit-suffix"),
        pytest.param("inf", id="inf"),
        pytest.param("nan", id="nan"),
    ],
)
def test_bad_cache_ttl_is_a_config_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"GATEWAY_CACHE_TTL": raw})

    message = str(info.value)
    assert "GATEWAY_CACHE_TTL" in message
    assert raw in message


def test_sandbox_mode_is_on_exactly_when_no_api_key_is_set() -> None:
    assert Settings.from_env({}).sandbox_mode is True
    settings = Settings.from_env({"KOMBO_API_KEY": "ks_prod_abc123"})
    assert settings.sandbox_mode is False
    assert settings.api_key == "ks_prod_abc123"


@pytest.mark.parametrize("key", [pytest.param("", id="empty"), pytest.param("   ", id="blank")])
def test_a_kombo_api_key_set_but_empty_is_an_error_not_the_sandbox(key: str) -> None:
    """A deployment whose secret did not arrive must not serve the sandbox's fake jobs."""
    with pytest.raises(ConfigError, match="KOMBO_API_KEY is set but empty"):
        Settings.from_env({"KOMBO_API_KEY": key})


def test_api_key_and_integration_are_read() -> None:
    settings = Settings.from_env(
        {"KOMBO_API_KEY": "ks_dev_xyz", "KOMBO_INTEGRATION_ID": "personio:CBNMt7dSNCzBdnRTx87dev4E"}
    )

    assert settings.api_key == "ks_dev_xyz"
    assert settings.integration_id == "personio:CBNMt7dSNCzBdnRTx87dev4E"
    assert settings.base_url == EU


def test_config_errors_never_echo_the_api_key() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"KOMBO_API_KEY": "ks_prod_supersecret", "KOMBO_REGION": "mars"})

    assert "ks_prod_supersecret" not in str(info.value)


# --- tokens configured but empty, plain HTTP, trusted proxies --------------------------------

TOKEN = {"name": "web", "sha256": "a" * 64}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("", id="empty-file"),
        pytest.param("  \n", id="blank"),
        pytest.param("[]", id="empty-list"),
    ],
)
def test_a_tokens_file_that_lists_no_token_stops_start_up(tmp_path, content: str) -> None:
    """An empty tokens file started a gateway that served everyone, with only a warning."""
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="GATEWAY_TOKENS_FILE"):
        Settings.from_env({"GATEWAY_TOKENS_FILE": str(path)})


def test_inline_tokens_that_list_none_stop_start_up() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_TOKENS lists no tokens"):
        Settings.from_env({"GATEWAY_TOKENS": "[]"})


def test_two_names_for_one_token_digest_stop_start_up() -> None:
    entries = json.dumps([TOKEN, {**TOKEN, "name": "mobile"}])
    with pytest.raises(ConfigError, match="same sha256"):
        Settings.from_env({"GATEWAY_TOKENS": entries})


@pytest.mark.parametrize(
    "url", ["http://api.kombo.dev/v1", "http://10.0.0.5:8001/v1", "http://kombo-proxy/v1"]
)
def test_plain_http_to_another_machine_needs_an_explicit_setting(url: str) -> None:
    with pytest.raises(ConfigError, match="clear text"):
        Settings.from_env({"KOMBO_BASE_URL": url})
    allowed = Settings.from_env({"KOMBO_BASE_URL": url, "KOMBO_ALLOW_PLAIN_HTTP": "true"})
    assert allowed.base_url == url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8001/v1", "http://localhost:8001/v1", "http://[::1]:8001/v1"]
)
def test_plain_http_to_this_machine_is_fine(url: str) -> None:
    assert Settings.from_env({"KOMBO_BASE_URL": url}).base_url == url


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = Settings.from_env({"GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,::1"})
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
    with pytest.raises(ConfigError, match="GATEWAY_TRUSTED_PROXIES"):
        Settings.from_env({"GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8,not-an-ip"})


@pytest.mark.parametrize(
    ("raw", "limit"),
    [
        pytest.param("", 48 * 1024, id="default"),
        pytest.param("65536", 65_536, id="raised"),
        pytest.param("1024", 1_024, id="minimum"),
    ],
)
def test_max_document_bytes(raw: str, limit: int) -> None:
    assert Settings.from_env({"GATEWAY_MAX_DOCUMENT_BYTES": raw}).max_document_bytes == limit


@pytest.mark.parametrize("raw", ["1023", "0", "-1", "48k", "inf"])
def test_bad_max_document_bytes_is_a_config_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_MAX_DOCUMENT_BYTES"):
        Settings.from_env({"GATEWAY_MAX_DOCUMENT_BYTES": raw})


# --- each default stated once ---------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(NUMERIC_VARIABLES))
def test_every_numeric_setting_reads_its_variable_and_defaults_to_its_field(field: str):
    variable, minimum = NUMERIC_VARIABLES[field]
    default = getattr(Settings(), field)
    assert getattr(Settings.from_env({}), field) == default
    changed = max(minimum, default) * 2 + 1
    value = getattr(Settings.from_env({variable: str(changed)}), field)
    assert value == changed and type(value) is type(default)


@pytest.mark.parametrize("field", sorted(FLAG_VARIABLES))
def test_every_flag_reads_its_variable_and_defaults_to_its_field(field: str):
    default = getattr(Settings(), field)
    assert getattr(Settings.from_env({}), field) is default
    # Persisted-only mode needs its list of documents (tested below).
    needs = {"GATEWAY_PERSISTED_DOCUMENTS": "docs.json"} if field == "persisted_only" else {}
    flipped = Settings.from_env({FLAG_VARIABLES[field]: str(not default).lower(), **needs})
    assert getattr(flipped, field) is (not default)


def test_persisted_only_without_a_documents_file_is_refused_with_the_remedy():
    with pytest.raises(ConfigError, match="GATEWAY_PERSISTED_DOCUMENTS, which is not set"):
        Settings.from_env({"GATEWAY_PERSISTED_ONLY": "true"})


def test_every_variable_is_in_the_readme():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    variables = [v for v, _ in NUMERIC_VARIABLES.values()] + list(FLAG_VARIABLES.values())
    assert [v for v in variables if f"`{v}`" not in readme] == []


# --- Redis -----------------------------------------------------------------------------------


def test_redis_is_off_unless_configured_and_its_url_is_checked_without_echoing_it():
    assert Settings.from_env({}).redis_url is None
    url = "rediss://gateway:s3cret-pass@redis.internal:6380/0"
    assert Settings.from_env({"GATEWAY_REDIS_URL": url}).redis_url == url
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"GATEWAY_REDIS_URL": "http://gateway:s3cret-pass@redis:6379"})
    assert "GATEWAY_REDIS_URL" in str(refused.value) and "s3cret" not in str(refused.value)


@pytest.mark.parametrize("prefix", ["", "a b", "kgw{x}", "x" * 65])
def test_a_redis_prefix_that_would_break_keys_is_refused(prefix: str):
    if not prefix:  # empty: the default
        assert Settings.from_env({"GATEWAY_REDIS_PREFIX": prefix}).redis_prefix == "kgw"
        return
    with pytest.raises(ConfigError, match="GATEWAY_REDIS_PREFIX"):
        Settings.from_env({"GATEWAY_REDIS_PREFIX": prefix})


# --- Kombo's webhook -------------------------------------------------------------------------


def test_the_webhook_secret_is_read_kept_out_of_repr_and_empty_is_refused():
    assert Settings.from_env({}).webhook_secret is None
    settings = Settings.from_env({"KOMBO_WEBHOOK_SECRET": " whsec_s3cret-value \n"})
    assert settings.webhook_secret == "whsec_s3cret-value"
    assert "s3cret" not in repr(settings)
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"KOMBO_WEBHOOK_SECRET": "  "})
    assert "KOMBO_WEBHOOK_SECRET is set but empty" in str(refused.value)
    assert Settings.from_env({"GATEWAY_WEBHOOK_RATE_LIMIT": "2.5"}).webhook_rate_limit == 2.5
