"""The published SDL: up to date, complete against the contract, readable by other tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graphql import build_schema, find_breaking_changes, find_dangerous_changes

from gateway.schema.build import client_sdl, subgraph_sdl

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = Path(__file__).resolve().parent / "fixtures" / "contract.graphql"


def test_schema_graphql_is_what_the_code_prints():
    assert (ROOT / "schema.graphql").read_text() == client_sdl(), (
        "schema.graphql is stale: run `make schema` and commit it"
    )


def test_cli_prints_exactly_schema_graphql():
    printed = subprocess.run(
        [sys.executable, "-m", "gateway", "schema"], capture_output=True, text=True, check=True
    ).stdout
    assert printed == (ROOT / "schema.graphql").read_text()


def test_every_contract_type_field_argument_and_enum_value_is_served_unchanged():
    contract = build_schema(CONTRACT.read_text())
    ours = build_schema(client_sdl())
    assert find_breaking_changes(contract, ours) == []
    # Adding an enum value or an optional argument would be "dangerous" for clients.
    assert find_dangerous_changes(contract, ours) == []
    for name, contract_type in contract.type_map.items():
        if name.startswith("__"):
            continue
        assert name in ours.type_map, name
        fields = getattr(contract_type, "fields", None)
        if fields:
            # Same field set: nothing outside the contract leaks into the client API.
            assert set(ours.type_map[name].fields) == set(fields), name  # type: ignore[attr-defined]


def test_deprecations_the_contract_asks_for():
    ours = build_schema(client_sdl())
    job = ours.type_map["Job"].fields  # type: ignore[attr-defined]
    assert job["confidential"].deprecation_reason
    assert job["contactId"].deprecation_reason
    job_filter = ours.type_map["JobFilter"].fields  # type: ignore[attr-defined]
    assert job_filter["status"].deprecation_reason
    assert not job_filter["statuses"].deprecation_reason


def test_client_sdl_has_no_federation_parts():
    sdl = client_sdl()
    for federation_part in ("@key", "@link", "@shareable", "_entities", "_service", "_Any"):
        assert federation_part not in sdl


def test_subgraph_sdl_links_federation_2_and_declares_both_keys():
    sdl = subgraph_sdl()
    assert 'schema @link(url: "https://specs.apollo.dev/federation/v2.0"' in sdl
    assert '@key(fields: "id")' in sdl and '@key(fields: "komboId")' in sdl
    assert "type PageInfo @shareable" in sdl
