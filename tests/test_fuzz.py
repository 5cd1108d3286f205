"""Fuzzing the running gateway over real HTTP (hypothesis, fixed seed and budget).

Generated queries over the real schema (`schema.graphql`: fields, aliases, inline and
named fragments, `@include`/`@skip`, arguments as literals and as variables, valid and
garbage values), syntactic garbage, the federation `_entities` field, and malformed HTTP
requests (bad JSON, wrong content types and methods, oversized bodies, odd headers).

Every answer must be: below HTTP 500, JSON (GraphiQL's HTML page aside), errors coded
with the contract's codes only (INTERNAL_SERVER_ERROR is a bug), never the API key.
`test_fuzzed_enough` checks the module sent at least 1,000 generated GraphQL requests
(about 1,400 requests in all; about 30 s on 2 cores).
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import string
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import graphql
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bench.queries import JOB_ALL_FIELDS
from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS, Settings
from gateway.sandbox.data import dataset
from tests.support import fanning_fragments, fragment_chain

INTEGRATION_A, INTEGRATION_B = SANDBOX_INTEGRATION_IDS
#: The gateway's default body limit (1 MiB), which the test gateway keeps.
MAX_BODY_BYTES: int = Settings.__dataclass_fields__["max_body_bytes"].default

SCHEMA = graphql.build_schema((Path(__file__).parents[1] / "schema.graphql").read_text())

#: The contract's codes (section 6) a correct gateway may answer; INTERNAL_SERVER_ERROR is a bug.
CONTRACT_CODES = frozenset(
    {
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "BAD_USER_INPUT",
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "RATE_LIMITED",
        "UPSTREAM_UNAVAILABLE",
        "UPSTREAM_ERROR",
    }
)

#: Requests sent, by test; `test_fuzzed_enough` checks the total.
SENT: Counter[str] = Counter()

# Failing examples may be large (bodies over 1 MiB): show them anyway.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


# --- checking answers ---------------------------------------------------------------------


@dataclass
class Sent:
    """One HTTP request as the fuzzer built it (shown when an answer is wrong)."""

    method: str = "POST"
    params: dict[str, str] | str | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content: bytes | Callable[[], Iterator[bytes]] | None = None

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def expects_graphiql(self) -> bool:
        """A GET without `query` from a browser gets GraphiQL's HTML page: its `Accept`
        lists `text/html` with a q-value other than 0 (`*/*` alone, httpx's default, and
        curl's, gets JSON)."""
        accept = b",".join(v for k, v in self.headers if k.lower() == b"accept")
        ranges = accept.decode("latin-1").lower().replace(" ", "").split(",")
        browser = any(
            media_type == "text/html"
            and not any(p[:2] == "q=" and not p[2:].strip("0.") for p in params)  # q=0
            for media_type, *params in (item.split(";") for item in ranges)
        )
        if self.method != "GET" or not browser:
            return False
        if isinstance(self.params, str):
            return httpx.QueryParams(self.params).get("query") is None
        return not self.params or self.params.get("query") is None

    def describe(self) -> str:
        body: Any = self.content
        if callable(body):
            body = "<chunked>"
        elif isinstance(body, bytes) and len(body) > 300:
            body = body[:300] + f"...<{len(body)} bytes>".encode()
        headers = [(name, value[:100]) for name, value in self.headers]
        return f"{self.method} params={str(self.params)[:300]} headers={headers} body={body!r}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.describe())  # how hypothesis shows a falsifying example


def send(
    http: httpx.Client, test: str, request: Sent, *, collect: bool = False
) -> dict[str, Any] | None:
    """Sends `request`, checks the answer against the contract, returns its JSON body.

    `collect`: on a wrong answer, also collect garbage now (a failing `_entities` leaks
    never-awaited coroutines, whose warnings are errors here).
    """
    url = "/graphql"
    params = request.params
    if isinstance(params, str):  # a raw query string, sent as is
        url, params = f"/graphql?{params}", None
    SENT[test] += 1
    try:
        for attempt in range(2):
            content = request.content() if callable(request.content) else request.content
            try:
                response = http.request(
                    request.method, url, params=params, headers=request.headers, content=content
                )
                break
            except httpx.TransportError as exc:
                # Once: a kept-alive connection the server dropped after an earlier failure.
                if attempt:
                    pytest.fail(f"{request.describe()}\n-> no response: {exc!r}")
        return check(response, request)
    except (AssertionError, pytest.fail.Exception):
        settle(http, collect)
        raise


def settle(http: httpx.Client, collect: bool) -> None:
    """Lets the in-process gateway finish with a failure before pytest reports it.

    The gateway logs a 500's traceback after answering, and leaked coroutines warn when
    collected. Both format tracebacks, which on CPython 3.11.7 calls `ast.parse`; done in
    the server's thread while pytest parses source for its report, it can abort the run
    ("SystemError: AST constructor recursion depth mismatch", an INTERNALERROR). A round
    trip through the server's event loop waits for the logging; `gc.collect` finalizes.
    """
    with contextlib.suppress(httpx.HTTPError):
        http.get("/healthz")
    if collect:
        gc.collect()


def check(response: httpx.Response, request: Sent) -> dict[str, Any] | None:
    shown = f"{request.describe()}\n-> {response.status_code} {response.text[:500]}"
    assert response.status_code < 500, shown
    assert SANDBOX_API_KEY not in response.text, shown
    assert SANDBOX_API_KEY not in str(response.headers), shown
    content_type = response.headers.get("content-type", "")
    if request.expects_graphiql():
        assert response.status_code == 200, shown
        assert content_type.startswith("text/html"), shown
        return None
    assert content_type.startswith("application/json"), shown
    body = json.loads(response.content)
    assert isinstance(body, dict), shown
    assert "data" in body or "errors" in body, shown
    errors = body.get("errors")
    if response.status_code != 200:
        assert errors, shown
    assert errors is None or isinstance(errors, list), shown
    for error in errors or ():
        assert isinstance(error.get("message"), str), shown
        code = (error.get("extensions") or {}).get("code")
        assert code in CONTRACT_CODES, shown
    return body


# --- seeds: real IDs and cursors ------------------------------------------------------------


@dataclass(repr=False)
class Seeds:
    kombo_ids: list[str]
    global_ids: list[str]
    #: Global IDs of other types (stages, questions, postings...): not job IDs.
    other_ids: list[str]
    #: Cursors valid for `jobs` without a filter, on integration A.
    cursors: list[str]
    #: Cursors of another filter or integration.
    foreign_cursors: list[str]

    def __repr__(self) -> str:
        return "Seeds(...)"  # keeps hypothesis's reports short


_SEED_PAGE = """
  edges { cursor node { id komboId stages { id } screeningQuestions { id }
                        jobPostings { id } hiringTeam { id } } }
"""


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def seeds(http: httpx.Client) -> Seeds:
    query = f"""{{
      plain: jobs(first: 4) {{ {_SEED_PAGE} }}
      deleted: jobs(first: 3, filter: {{includeDeleted: true, statuses: [CLOSED]}}) {{
        {_SEED_PAGE} }}
    }}"""
    a = http.post("/graphql", json={"query": query}).json()["data"]
    b = http.post(
        "/graphql",
        json={"query": f"{{ plain: jobs(first: 3) {{ {_SEED_PAGE} }} }}"},
        headers={"X-Integration-Id": INTEGRATION_B},
    ).json()["data"]
    edges = a["plain"]["edges"] + a["deleted"]["edges"] + b["plain"]["edges"]
    nodes = [edge["node"] for edge in edges]
    others = [
        item["id"]
        for node in nodes
        for key in ("stages", "screeningQuestions", "jobPostings", "hiringTeam")
        for item in node[key][:1]
    ]
    return Seeds(
        kombo_ids=[node["komboId"] for node in nodes],
        global_ids=[node["id"] for node in nodes],
        other_ids=others,
        cursors=[edge["cursor"] for edge in a["plain"]["edges"]],
        foreign_cursors=[edge["cursor"] for edge in a["deleted"]["edges"] + b["plain"]["edges"]],
    )


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnumValue:
    """An enum value: bare in GraphQL text, a string in variables."""

    name: str


def literal(value: Any) -> str:
    """`value` as a GraphQL literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, EnumValue):
        return value.name
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON escapes are GraphQL escapes
    if isinstance(value, list):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {literal(item)}" for key, item in value.items()) + "}"
    raise TypeError(value)


def as_json(value: Any) -> Any:
    if isinstance(value, EnumValue):
        return value.name
    if isinstance(value, list):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    return value


def dumps(value: Any) -> bytes:
    # ASCII escapes, so lone surrogates travel as `\ud800` like a hostile client would send.
    return json.dumps(value, ensure_ascii=True, allow_nan=False).encode()


NASTY_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "\udfff\ud800",
        "\u202e\u0000\uffff",
        "🙂" * 50,
        "a,b",
        "%00",
        "%ZZ",
        "\\",
        '"',
        "'; DROP TABLE jobs; --",
        "../../etc/passwd",
        "${jndi:ldap://x}",
        "null",
        "true",
        "0",
        "-1",
        "1e309",
        "NaN",
        "Job:",
        ":",
        "==",
        "Sm9iOg==",  # "Job:"
        "Sm9iOmFiYw==",  # "Job:abc"
        "SmI6" * 10,
        "\n\r\t",
        "<script>alert(1)</script>",
    ]
)
LONG_STRINGS = st.builds(
    lambda char, n: char * n, st.sampled_from(["a", "é", "🙂", ",", "A1"]), st.integers(300, 20_000)
)
TEXT = st.one_of(st.text(max_size=30), NASTY_STRINGS, LONG_STRINGS)
HUGE_INTS = st.sampled_from([-1, -(2**31), 2**31 - 1, 2**31, -(2**31) - 1, 2**53 + 1, 10**30])
FINITE = st.floats(allow_nan=False, allow_infinity=False)
WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    HUGE_INTS,
    FINITE,
    TEXT,
    st.lists(st.integers(0, 9), max_size=3),
    st.fixed_dictionaries({"a": st.integers(0, 9)}),
)
ENUMS = {
    name: [value for value in type_.values]
    for name, type_ in SCHEMA.type_map.items()
    if isinstance(type_, graphql.GraphQLEnumType) and not name.startswith("__")
}
BAD_ENUM_NAMES = st.sampled_from(["open", "OPENED", "NOPE", "null", "true", "_", "Open", "É"])


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


def unknown_kombo_id() -> st.SearchStrategy[str]:
    return st.text(string.ascii_letters + string.digits, min_size=24, max_size=24)


@dataclass
class Values:
    """Argument values over the seeds: plausible ones, and (unless `clean`) garbage too."""

    seeds: Seeds
    clean: bool = False

    def mix(self, valid: st.SearchStrategy[Any], *garbage: st.SearchStrategy[Any]) -> Any:
        if self.clean:
            return valid
        return st.one_of(valid, valid, *garbage)

    def job_id(self) -> st.SearchStrategy[Any]:
        seeds = self.seeds
        plausible = st.one_of(
            st.sampled_from(seeds.kombo_ids),
            st.sampled_from(seeds.global_ids),
            unknown_kombo_id(),
            unknown_kombo_id().map(lambda kid: b64(f"Job:{kid}")),
        )
        return self.mix(
            plausible,
            st.sampled_from(seeds.other_ids),
            st.sampled_from(seeds.kombo_ids).map(lambda kid: b64(f"JobStage:{kid}")),
            st.sampled_from(seeds.global_ids).map(lambda gid: gid.rstrip("=")),
            st.sampled_from(seeds.kombo_ids).map(lambda kid: kid[:-1]),
            TEXT.map(lambda text: b64(f"Job:{text}")),
            TEXT.map(b64),
            TEXT,
            WRONG_TYPES,
        )

    def job_ids(self) -> st.SearchStrategy[Any]:
        ids = self.job_id()
        return self.mix(
            st.one_of(
                st.lists(ids, max_size=5),
                st.lists(st.sampled_from(self.seeds.kombo_ids), min_size=1, max_size=8),
            ),
            ids,  # a single value: GraphQL coerces it into a list
            st.just([self.seeds.kombo_ids[0]] * 1001),  # over the gateway's ID limit
            st.lists(st.one_of(st.none(), st.lists(ids, max_size=2)), min_size=1, max_size=3),
            WRONG_TYPES,
        )

    def first(self) -> st.SearchStrategy[Any]:
        return self.mix(
            st.sampled_from([0, 1, 2, 3, 5, 10, 25, 50, 250]),
            st.sampled_from([-1, 251, 1000]),
            HUGE_INTS,
            WRONG_TYPES,
        )

    def cursor(self) -> st.SearchStrategy[Any]:
        seeds = self.seeds
        valid = st.sampled_from(seeds.cursors)
        return self.mix(
            valid,
            st.sampled_from(seeds.foreign_cursors),
            st.tuples(valid, st.integers(0, 40)).map(lambda t: t[0][: t[1]]),
            st.tuples(valid, st.integers(0, 40), st.sampled_from("A0_-=+/")).map(
                lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
            ),
            valid.map(lambda cursor: cursor + "=="),
            valid.map(str.swapcase),
            valid.map(
                lambda c: base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)).decode(
                    "utf-8", "replace"
                )
            ),
            st.sampled_from(["1:x:y", "1:abc:250:0:b:", "2:a:1:1:b:c", "1:::::", "0"]).map(b64),
            TEXT.map(b64),
            TEXT,
            WRONG_TYPES,
        )

    def datetime(self) -> st.SearchStrategy[Any]:
        valid = st.sampled_from(
            [
                "2026-05-18T09:55:30.731Z",
                "2020-01-01",
                "2020-01-01T00:00:00",
                "2024-02-29T12:00:00+05:30",
                "0001-01-01T00:00:00-14:00",
                "9999-12-31T23:59:59.999999+14:00",
            ]
        )
        return self.mix(
            valid,
            st.sampled_from(["yesterday", "2020-13-01", "2020-02-30", "T", "9999-99-99", "now"]),
            TEXT,
            WRONG_TYPES,
        )

    def strings(self) -> st.SearchStrategy[Any]:
        return self.mix(st.text(string.ascii_letters, max_size=8), TEXT, WRONG_TYPES)

    def boolean(self) -> st.SearchStrategy[Any]:
        return self.mix(st.booleans(), WRONG_TYPES)

    def enum(self, name: str) -> st.SearchStrategy[Any]:
        return self.mix(
            st.sampled_from(ENUMS[name]).map(EnumValue),
            BAD_ENUM_NAMES.map(EnumValue),
            TEXT,
            WRONG_TYPES,
        )

    def filter(self) -> st.SearchStrategy[Any]:
        def enum_list(name: str) -> st.SearchStrategy[Any]:
            return self.mix(st.lists(self.enum(name), max_size=4), self.enum(name))

        def string_list() -> st.SearchStrategy[Any]:
            return self.mix(st.lists(self.strings(), max_size=3), self.strings())

        fields = {
            "ids": self.job_ids(),
            "remoteIds": string_list(),
            "jobCodes": string_list(),
            "postUrl": self.strings(),
            "status": self.enum("JobStatus"),
            "statuses": enum_list("JobStatus"),
            "employmentTypes": enum_list("EmploymentType"),
            "visibilities": enum_list("JobVisibility"),
            "remoteCreatedAfter": self.datetime(),
            "nameContains": self.strings(),
            "updatedAfter": self.datetime(),
            "includeDeleted": self.boolean(),
            "ignoreUnsupportedFilters": self.boolean(),
        }
        if not self.clean:
            fields["nope"] = WRONG_TYPES  # not a JobFilter field
        chosen = st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True)
        filters = chosen.flatmap(lambda names: st.fixed_dictionaries({n: fields[n] for n in names}))
        return self.mix(filters, filters, WRONG_TYPES)


#: GraphQL type of each `JobFilter` field, for declaring variables.
FILTER_TYPES = {
    name: str(input_field.type)
    for name, input_field in SCHEMA.type_map["JobFilter"].fields.items()  # type: ignore[union-attr]
}
WRONG_VARIABLE_TYPES = [
    "Int",
    "Int!",
    "String",
    "ID",
    "[ID]",
    "[String!]!",
    "Boolean",
    "Float",
    "JobFilter!",
    "JobStatus",
    "[JobStatus!]",
    "DateTime",
    "JSON",
    "Job",
    "Nope",
    "[[ID]]",
]
#: Members of unions and interfaces: the same field name may have other types in a sibling.
ABSTRACT_MEMBERS = frozenset(
    member.name
    for type_ in SCHEMA.type_map.values()
    if isinstance(type_, graphql.GraphQLUnionType)
    for member in SCHEMA.get_possible_types(type_)
)


# --- schema-aware queries -------------------------------------------------------------------


@dataclass
class Operation:
    query: str
    variables: dict[str, Any]
    operation_name: str | None


class QueryBuilder:
    """Draws one operation over the schema, with its variables.

    About half the operations are well-formed (`strict`): they validate, and with clean
    values they resolve. The rest may break any rule; values are garbage independently.
    """

    MAX_DEPTH = 6

    def __init__(self, draw: Any, seeds: Seeds) -> None:
        self.draw = draw
        self.strict = self.chance(50)
        self.values = Values(seeds, clean=self.strict and self.chance(60))
        self.definitions: list[str] = []
        self.variables: dict[str, Any] = {}
        self.fragments: list[str] = []
        self.fields_left = 30
        self.aliases = 0

    def chance(self, percent: int) -> bool:
        return bool(self.draw(st.integers(0, 99)) < percent)

    def sloppy(self, percent: int) -> bool:
        """A chance to break a rule, never in strict operations."""
        return not self.strict and self.chance(percent)

    def pick(self, options: list[Any]) -> Any:
        return self.draw(st.sampled_from(options))

    # variables

    def variable(self, type_name: str, value: Any) -> str:
        """Declares a variable (usually of the right type) for `value`; its reference."""
        name = f"v{len(self.definitions)}"
        declared = self.pick(WRONG_VARIABLE_TYPES) if self.sloppy(20) else type_name
        default = ""
        if self.chance(10):
            default = f" = {literal(value)}"
        self.definitions.append(f"${name}: {declared}{default}")
        if not self.sloppy(10):  # sometimes missing
            self.variables[name] = as_json(value)
        return f"${name}"

    def value(self, type_name: str, value: Any) -> str:
        """`value` as a literal, or as a variable, or (for filters) partly both."""
        if isinstance(value, dict) and type_name == "JobFilter" and self.chance(40):
            types = {key: FILTER_TYPES.get(key, "Int") for key in value}
            parts = [f"{key}: {self.value(types[key], item)}" for key, item in value.items()]
            return "{" + ", ".join(parts) + "}"
        if self.chance(50):
            return literal(value)
        return self.variable(type_name, value)

    # selections

    def alias(self) -> str:
        if self.sloppy(5):
            return self.pick(["a: ", "id: ", "first: "])  # may clash with a sibling
        self.aliases += 1
        return f"al{self.aliases}: "

    def directives(self) -> str:
        if not self.chance(15):
            return ""
        names = ["include", "skip"]
        if self.sloppy(10):
            names = ["deprecated", "nope", "specifiedBy"]
        name = self.pick(names)
        condition = self.draw(
            st.booleans() if self.strict else st.one_of(st.booleans(), WRONG_TYPES)
        )
        if self.chance(50):
            text = literal(condition)
        else:
            types = ["Boolean!", "Boolean", "String"] if self.sloppy(30) else ["Boolean!"]
            text = self.variable(self.pick(types), condition)
        return f" @{name}(if: {text})"

    def arguments(self, field_name: str) -> str:
        values = self.values
        arguments: list[tuple[str, int, str, Callable[[], st.SearchStrategy[Any]]]] = {
            "jobs": [
                ("first", 70, "Int", values.first),
                ("after", 35, "String", values.cursor),
                ("filter", 50, "JobFilter", values.filter),
            ],
            "job": [("id", 100, "ID!", values.job_id)],
            "node": [("id", 100, "ID!", values.job_id)],
            "nodes": [("ids", 100, "[ID!]!", values.job_ids)],
        }.get(field_name, [])
        parts = []
        for name, percent, type_name, strategy in arguments:
            if self.chance(percent) and not self.sloppy(3):
                parts.append(f"{name}: {self.value(type_name, self.draw(strategy()))}")
        if self.sloppy(3):
            parts.append(f"nope: {self.value('Int', 1)}")
        return f"({', '.join(parts)})" if parts else ""

    def selection_set(self, type_: graphql.GraphQLNamedType, depth: int) -> str:
        count = self.draw(st.integers(1, 4))
        return "{ " + " ".join(self.selection(type_, depth) for _ in range(count)) + " }"

    def selection(self, type_: graphql.GraphQLNamedType, depth: int) -> str:
        kinds = ["typename"]
        if isinstance(type_, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType):
            kinds += ["field"] * (8 if self.fields_left > 0 else 1)
        if depth < self.MAX_DEPTH:
            kinds += ["inline", "spread"]
        kind = self.pick(kinds)
        if kind == "typename":
            alias = self.alias() if self.chance(10) else ""
            return f"{alias}__typename{self.directives()}"
        if kind == "field":
            return self.field(type_, depth)  # type: ignore[arg-type]
        condition = self.type_condition(type_)
        if kind == "spread" and condition is None:
            condition = type_.name
        target = SCHEMA.get_type(condition) if condition else None
        body = self.selection_set(target or type_, depth + 1)
        if kind == "inline":
            on = f" on {condition}" if condition else ""
            return f"...{on}{self.directives()} {body}"
        name = f"F{len(self.fragments)}"
        self.fragments.append(f"fragment {name} on {condition} {body}")
        return f"...{name}{self.directives()}"

    def type_condition(self, type_: graphql.GraphQLNamedType) -> str | None:
        options: list[str | None] = [type_.name, None]
        if isinstance(type_, graphql.GraphQLAbstractType):
            options += [possible.name for possible in SCHEMA.get_possible_types(type_)]
        if self.sloppy(5):
            options = ["PageInfo", "Query", "Nope", "String"]  # wrong or unknown
        return self.pick(options)  # type: ignore[no-any-return]

    def field(
        self, type_: graphql.GraphQLObjectType | graphql.GraphQLInterfaceType, depth: int
    ) -> str:
        names = ["nope", "jobz", "__schema"] if self.sloppy(3) else sorted(type_.fields)
        name = self.pick(names)
        self.fields_left -= 1
        root = type_ is SCHEMA.query_type
        if self.strict and type_.name in ABSTRACT_MEMBERS:
            # Siblings of a union may share a field name with another type: keys must differ.
            alias = f"{type_.name}_{name}: "
        elif root and self.strict or self.chance(15):
            alias = self.alias()
        else:
            alias = ""
        arguments = self.arguments(name) if root else ""
        text = f"{alias}{name}{arguments}{self.directives()}"
        definition = type_.fields.get(name)
        if definition is None:
            return text
        named = graphql.get_named_type(definition.type)
        if graphql.is_leaf_type(named):
            return text + (" { id }" if self.sloppy(3) else "")
        if self.sloppy(3):
            return text  # no selection on an object: invalid
        if depth >= self.MAX_DEPTH or self.fields_left <= 0:
            return text + " { __typename }"
        return f"{text} {self.selection_set(named, depth + 1)}"

    def operation(self) -> Operation:
        query_type = SCHEMA.query_type
        assert query_type is not None
        roots = [self.field(query_type, 1) for _ in range(self.draw(st.integers(1, 3)))]
        selection = "{ " + " ".join(roots) + " }"
        keyword = self.pick(["mutation", "subscription"]) if self.sloppy(5) else "query"
        if not self.definitions and self.chance(40):
            document, name = selection, None
        else:
            definitions = f"({', '.join(self.definitions)})" if self.definitions else ""
            document, name = f"{keyword} Main{definitions} {selection}", "Main"
        documents = [document, *self.fragments]
        operation_name = name
        if self.chance(10) and name:
            documents.append("query Other { __typename }")
            operation_name = self.pick(["Main", "Other"])
        if self.sloppy(10):
            operation_name = self.pick([name, "Other", "Nope", None, ""])
        return Operation("\n".join(documents), self.variables, operation_name)


@st.composite
def operations(draw: Any, seeds: Seeds) -> Operation:
    return QueryBuilder(draw, seeds).operation()


HEADERS = st.lists(
    st.one_of(
        st.tuples(
            st.just(b"x-integration-id"),
            st.sampled_from(
                [INTEGRATION_A, INTEGRATION_B, "greenhouse:nope", "x", "", ":", "a" * 300]
            ).map(str.encode),
        ),
        st.tuples(st.just(b"cache-control"), st.sampled_from([b"no-cache", b"max-age=0", b"x"])),
    ),
    max_size=2,
    unique_by=lambda header: header[0],
)


def graphql_request(operation: Operation, use_get: bool, headers: list[Any]) -> Sent:
    payload: dict[str, Any] = {"query": operation.query}
    if operation.variables:
        payload["variables"] = operation.variables
    if operation.operation_name is not None:
        payload["operationName"] = operation.operation_name
    body = dumps(payload)
    if use_get and len(body) < 4000:
        params = {"query": operation.query}
        if operation.variables:
            params["variables"] = dumps(operation.variables).decode()
        if operation.operation_name:
            params["operationName"] = operation.operation_name
        return Sent("GET", params, [(b"accept", b"application/json"), *headers])
    return Sent("POST", None, [(b"content-type", b"application/json"), *headers], body)


@settings(FUZZ, max_examples=700)
@given(data=st.data())
def test_schema_aware_queries(http: httpx.Client, seeds: Seeds, data: st.DataObject):
    operation = data.draw(operations(seeds), label="operation")
    use_get = data.draw(st.integers(0, 99), label="get") < 15
    headers = data.draw(st.one_of(st.just([]), st.just([]), HEADERS), label="headers")
    send(http, "schema", graphql_request(operation, use_get, headers))


# --- syntactic garbage ----------------------------------------------------------------------

TOKENS = (
    "{ } ( ) [ ] : ... @ $ ! = | & , query mutation subscription fragment on jobs job node "
    "nodes edges id komboId first after filter ids statuses OPEN true false null __typename "
    "__schema __type @include @skip @deprecated @nope Job Node $v Int ID! 1 -1 1.5e3 "
    '"str" """block""" # \n'
).split(" ")


def nested(open_: str, close: str) -> st.SearchStrategy[str]:
    return st.integers(1, 6000).map(lambda n: open_ * n + close * n)


@st.composite
def garbage_queries(draw: Any, seeds: Seeds) -> str:
    choice = draw(st.integers(0, 9))
    valid = draw(operations(seeds)).query if choice in (2, 3, 8) else ""
    if choice == 0:
        return str(draw(st.text(max_size=200)))
    if choice == 1:
        return " ".join(draw(st.lists(st.sampled_from(TOKENS), max_size=60)))
    if choice == 2:
        return valid[: draw(st.integers(0, max(0, len(valid) - 1)))]
    if choice == 3:
        at = draw(st.integers(0, len(valid)))
        junk = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=3)))
        cut = draw(st.integers(0, 3))
        return valid[:at] + junk + valid[at + cut :]
    if choice == 4:
        return "{ " + draw(nested("jobs { ", "} ")) + " }"
    if choice == 5:
        return "{ jobs(filter: " + draw(nested("[", "]")) + ") { nodes { id } } }"
    if choice == 6:
        return draw(
            st.sampled_from(
                [
                    "{ " + "a: __typename " * 600 + "}",  # aliases over the limit
                    "{ " + "__typename " * 25_000 + "}",  # tokens over the limit
                    "{ jobs { edges { node { " * 8 + "id" + " } } }" * 8 + " }",  # too deep
                    "{ jobs(first: 1) { nodes { id @include(if: true) @skip(if: false) } } }",
                    "query($x: Boolean = true) { jobs(first: 1) { nodes @nope { id } } }",
                    "{ __schema { types { name fields { name args { name } } } } }",
                    '{ __type(name: "JobFilter") { inputFields { name } } }',
                    "{ job(id: 1) { id } }",
                    "{ nodes(ids: null) { id } }",
                    '{ job(id: "x", id: "y") { id } }',
                    "{ jobs(first: 1, first: 2) { nodes { id } } }",
                    "query A { __typename } query A { __typename }",
                    "fragment F on Job { ...F } { jobs { nodes { ...F } } }",
                    '{ jobs(filter: {ids: ["x"], ids: ["y"]}) { nodes { id } } }',
                    "{ jobs(first: 1) { nodes { id } } } trailing",
                    "\ufeff{ __typename }",
                    "{ __typename }" + "#" * 5000,
                    '{ jobs(filter: {nameContains: """' + "x" * 50_000 + '"""}) { nodes { id } } }',
                ]
            )
        )
    if choice == 7:
        return "{ " + draw(nested("a { ", "} ")) + "}"
    if choice == 8:
        return valid + draw(st.sampled_from([" @nope", " }", " {", " $", "query", "\x00"]))
    return "{ jobs" + draw(nested("(", ")")) + " { nodes { id } } }"


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_syntactic_garbage(http: httpx.Client, seeds: Seeds, data: st.DataObject):
    query = data.draw(garbage_queries(seeds), label="query")
    use_get = data.draw(st.integers(0, 99), label="get") < 10
    send(http, "garbage", graphql_request(Operation(query, {}, None), use_get, []))


# --- federation: `_entities` and `_service` (served, though not in schema.graphql) ----------


@st.composite
def representations(draw: Any, values: Values) -> Any:
    typename = st.one_of(
        st.sampled_from(["Job", "Job", "Job", "PageInfo", "Query", "Node", "Nope", ""]),
        WRONG_TYPES,
    )
    keys = {
        "__typename": typename,
        "id": values.job_id(),
        "komboId": values.job_id(),
        "name": TEXT,
        "info": WRONG_TYPES,
        "cls": WRONG_TYPES,
    }
    chosen = draw(st.lists(st.sampled_from(sorted(keys)), max_size=3, unique=True))
    representation = draw(st.fixed_dictionaries({key: keys[key] for key in chosen}))
    if draw(st.integers(0, 99)) < 70:
        representation = {"__typename": "Job", **representation}
        if draw(st.booleans()):
            representation["id" if draw(st.booleans()) else "komboId"] = draw(values.job_id())
    if draw(st.integers(0, 99)) < 5:
        return draw(WRONG_TYPES)
    return representation


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_federation_fields(http: httpx.Client, seeds: Seeds, data: st.DataObject):
    values = Values(seeds)
    items = data.draw(st.lists(representations(values), max_size=4), label="representations")
    selection = "{ __typename ... on Job { id komboId name } }"
    if data.draw(st.booleans(), label="as variable"):
        query = f"query($r: [_Any!]!) {{ _entities(representations: $r) {selection} }}"
        operation = Operation(query, {"r": items}, None)
    else:
        query = f"{{ _service {{ sdl }} _entities(representations: {literal(items)}) {selection} }}"
        operation = Operation(query, {}, None)
    send(http, "federation", graphql_request(operation, False, []), collect=True)


# --- HTTP-level garbage ---------------------------------------------------------------------

VALID_QUERY = "{ jobs(first: 2) { nodes { komboId name } } }"


def json_bodies() -> st.SearchStrategy[bytes]:
    objects = st.fixed_dictionaries(
        {},
        optional={
            "query": st.one_of(st.just(VALID_QUERY), st.just("{ __typename }"), WRONG_TYPES),
            "variables": st.one_of(
                st.just({}), st.just({"x": 1}), WRONG_TYPES, st.just("{}"), st.just([{}])
            ),
            "operationName": st.one_of(st.sampled_from(["Nope", "", "Main"]), WRONG_TYPES),
            "extensions": WRONG_TYPES,
            "id": WRONG_TYPES,
        },
    )
    values = st.one_of(objects, objects, st.lists(objects, max_size=3), WRONG_TYPES)
    return values.map(dumps)


def malformed_bodies() -> st.SearchStrategy[bytes]:
    valid = dumps({"query": VALID_QUERY})
    return st.one_of(
        st.binary(max_size=100),
        st.integers(0, len(valid) - 1).map(lambda n: valid[:n]),
        st.sampled_from(
            [
                b"",
                b"{",
                b"{not json",
                b"\xef\xbb\xbf" + valid,  # UTF-8 BOM
                b"\xff\xfe" + valid.decode().encode("utf-16-le"),
                valid.replace(b"}", b",}"),
                b'{"query": "{ __typename }",}',
                b'{"query": NaN}',
                b'{"query": "{ jobs(first: 1) { nodes { id } } }", "variables": {"x": Infinity}}',
                b'{"query": "\\ud800"}',
                b'{"query": "{ __typename }"} {"query": "{ __typename }"}',
                b'{"query": "{ __typename }", "query": 5}',
                b"\x00" * 64,
                b'{"query": "' + b"\xc3\x28" + b'"}',  # invalid UTF-8
            ]
        ),
        st.integers(1, 50_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 50_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
        st.integers(1, 50_000).map(
            lambda n: (
                b'{"query": "{ __typename }", "variables": {"x": ' + b"[" * n + b"]" * n + b"}}"
            )
        ),
    )


CONTENT_TYPES = st.sampled_from(
    [
        None,
        b"application/json",
        b"application/json",
        b"application/json; charset=utf-8",
        b"application/json; charset=latin-1",
        b"APPLICATION/JSON",
        b"application/json;;;",
        b"application/graphql",
        b"application/graphql-response+json",
        b"text/plain",
        b"text/html",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data",
        b"multipart/form-data; boundary=x",
        b"multipart/mixed",
        b"*/*",
        b"",
        b"\xe9",
    ]
)
ODD_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(
            [b"x-integration-id", b"authorization", b"cache-control", b"accept", b"x-kombo-api-key"]
        ),
        st.one_of(
            st.sampled_from(
                [
                    INTEGRATION_A.encode(),
                    INTEGRATION_B.encode(),
                    b"personio:nope",
                    b"Bearer x",
                    b"Bearer",
                    b"Basic Zm9vOmJhcg==",
                    b"no-cache, no-store",
                    b"max-age=0",
                    b"max-age=-1",
                    b"no-cache" * 500,
                    b"application/json",
                    b"text/html",
                    b"multipart/mixed;subscriptionSpec=1.0",
                    b"text/event-stream",
                    b"application/graphql-response+json",
                    b"*/*;q=0",
                    b"ks_prod_nope_nope",
                    b"a" * 6000,
                    b"\xe9\xff:\xe9",
                    b"",
                ]
            ),
            st.binary(min_size=1, max_size=40).map(
                lambda raw: bytes(b if 0x20 < b < 0x7F or b >= 0x80 else 0x41 for b in raw)
            ),
        ),
    ),
    max_size=3,
    unique_by=lambda header: header[0],
)
QUERY_STRINGS = st.one_of(
    st.just(""),
    st.just("query="),
    st.just("query=%7B__typename%7D&query=%7Bnope%7D"),
    st.just("query=%7B__typename%7D&variables=%5B1"),
    st.just("query=%7B__typename%7D&variables=%5B%5D"),
    st.just("query=%7B__typename%7D&variables=null"),
    st.just("query=%7B__typename%7D&operationName=Nope"),
    st.just("query=mutation%20%7B__typename%7D"),
    st.just("query=%ZZ&variables=%"),
    st.just("query=%00"),
    st.just("query=%7B__typename%7D&variables=" + "%5B" * 5000 + "%5D" * 5000),
    st.just("variables=%7B%7D"),
    st.text(string.ascii_letters + string.digits + "&=%+;_-.~{}[]:$@!*'()/?", max_size=60),
    st.text(max_size=30).map(lambda text: "query=" + quote(text, safe="")),
)


@st.composite
def http_garbage(draw: Any) -> Sent:
    method = draw(
        st.sampled_from(["POST"] * 6 + ["GET"] * 3 + ["PUT", "DELETE", "PATCH", "OPTIONS"])
    )
    headers = list(draw(ODD_HEADERS))
    kind = draw(st.integers(0, 99))
    if method == "GET":
        return Sent("GET", draw(QUERY_STRINGS), headers)
    content_type = draw(CONTENT_TYPES)
    if content_type is not None:
        headers.append((b"content-type", content_type))
    if kind < 4:  # over the body limit, declared or chunked
        size = MAX_BODY_BYTES + draw(st.sampled_from([1, 100, 300_000]))
        body = b'{"query": "' + b"#" * (size - 13) + b'"}'
        if draw(st.booleans()):
            return Sent(method, None, headers, body)
        chunk = 64 * 1024
        return Sent(
            method,
            None,
            headers,
            lambda: (body[i : i + chunk] for i in range(0, len(body), chunk)),
        )
    if kind < 50:
        return Sent(method, None, headers, draw(json_bodies()))
    if kind < 90:
        return Sent(method, None, headers, draw(malformed_bodies()))
    multipart = (
        b'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        + draw(json_bodies())
        + b"\r\n--x--\r\n"
    )
    return Sent(method, None, headers, multipart)


@settings(FUZZ, max_examples=300)
@given(sent=http_garbage())
def test_http_garbage(http: httpx.Client, sent: Sent):
    send(http, "http", sent)


# --- hostile requests written out (regressions of what fuzzing found) ----------------------


def _deep_json(depth: int) -> bytes:
    return b'{"query": "{ __typename }", "variables": {"x": ' + b"[" * depth + b"]" * depth + b"}}"


def _entities(representations: Any) -> bytes:
    query = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }"
    return dumps({"query": query, "variables": {"r": representations}})


JSON = (b"content-type", b"application/json")
HOSTILE = {
    "deep-json-body": Sent("POST", None, [JSON], b"[" * 100_000 + b"]" * 100_000),
    "deep-json-variables": Sent("POST", None, [JSON], _deep_json(100_000)),
    "deep-json-get-variables": Sent(
        "GET", "query=%7B__typename%7D&variables=" + "%5B" * 3000 + "%5D" * 3000, []
    ),
    "entity-without-typename": Sent("POST", None, [JSON], _entities([{"id": "x"}])),
    "entity-not-an-object": Sent("POST", None, [JSON], _entities(["x"])),
    "entity-unknown-type": Sent("POST", None, [JSON], _entities([{"__typename": "Nope"}])),
    "entity-not-an-entity": Sent("POST", None, [JSON], _entities([{"__typename": "PageInfo"}])),
    "entity-reserved-key": Sent(
        "POST", None, [JSON], _entities([{"__typename": "Job", "cls": 1, "id": "x"}])
    ),
    "oversized-declared": Sent(
        "POST", None, [JSON], b'{"query": "' + b"#" * MAX_BODY_BYTES + b'"}'
    ),
    "deep-query": Sent("POST", None, [JSON], dumps({"query": "{" + "a {" * 5000 + "}" * 5001})),
    "json-not-an-object": Sent("POST", None, [JSON], b"1"),
    "empty-selection-set": Sent("POST", None, [JSON], dumps({"query": "{ jobs { } }"})),
    # Documents that cost far more than their size (contract section 7).
    "fragment-fan-out-21": Sent("POST", None, [JSON], dumps({"query": fanning_fragments(21)})),
    "fragment-fan-out-30": Sent("POST", None, [JSON], dumps({"query": fanning_fragments(30)})),
    "fragment-chain-240": Sent("POST", None, [JSON], dumps({"query": fragment_chain(240)})),
    "fragment-chain-2000": Sent("POST", None, [JSON], dumps({"query": fragment_chain(2000)})),
    "fragment-cycle": Sent(
        "POST",
        None,
        [JSON],
        dumps({"query": "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"}),
    ),
    # Filters too long for an upstream URL.
    "filter-name-65k-literal": Sent(
        "POST",
        None,
        [JSON],
        dumps(
            {"query": '{ jobs(filter: {nameContains: "%s"}) { nodes { id } } }' % ("x" * 65_000)}
        ),
    ),
    "filter-name-65k-variable": Sent(
        "POST",
        None,
        [JSON],
        dumps(
            {
                "query": "query($n: String) { jobs(filter: {nameContains: $n}) { nodes { id } } }",
                "variables": {"n": "é" * 65_000},
            }
        ),
    ),
    "filter-ids-too-long": Sent(
        "POST",
        None,
        [JSON],
        dumps(
            {
                "query": "query($i: [ID!]) { jobs(filter: {ids: $i}) { nodes { id } } }",
                "variables": {"i": [f"{n:024d}" for n in range(1_000)]},
            }
        ),
    ),
    # Batch items of the wrong shape: the same 400 as alone.
    "batch-query-not-a-string": Sent("POST", None, [JSON], dumps([{"query": 5}])),
    "batch-variables-not-an-object": Sent(
        "POST", None, [JSON], dumps([{"query": "{ __typename }", "variables": [1]}])
    ),
    "batch-extensions-not-an-object": Sent(
        "POST", None, [JSON], dumps([{"query": "{ __typename }", "extensions": "x"}])
    ),
    "batch-operation-name-not-a-string": Sent(
        "POST", None, [JSON], dumps([{"query": "{ __typename }", "operationName": {"a": 1}}])
    ),
    "operation-name-not-a-string": Sent(
        "POST", None, [JSON], dumps({"query": "{ __typename }", "operationName": 7})
    ),
    # Second round (issue 15): entities past the ID cap, credentials and integrations
    # sent twice, documents far past the size limit, valid or not.
    "entities-over-the-id-cap": Sent(
        "POST", None, [JSON], _entities([{"__typename": "Job", "komboId": "x"}] * 16_360)
    ),
    "authorization-twice": Sent(
        "POST",
        None,
        [JSON, (b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
        dumps({"query": "{ __typename }"}),
    ),
    "integration-twice": Sent(
        "POST",
        None,
        [JSON, (b"x-integration-id", b"personio:aaaaaaaa"), (b"x-integration-id", b"x:b")],
        dumps({"query": "{ jobs(first: 1) { nodes { id } } }"}),
    ),
    "document-1mb-invalid": Sent("POST", None, [JSON], dumps({"query": "{ " + "a(" * 300_000})),
    "document-600k-valid": Sent(
        "POST", None, [JSON], dumps({"query": "{ " + "__typename " * 60_000 + "}"})
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_requests(http: httpx.Client, name: str):
    send(http, "hostile", HOSTILE[name], collect=True)


# --- bad data from Kombo --------------------------------------------------------------------

#: Real sandbox jobs, as Kombo sends them, to break in the tests below.
_REAL_JOBS = [orjson.loads(record.encoded) for record in dataset()[INTEGRATION_A].jobs[:40]]
_ALL_FIELDS_QUERY = "{ jobs(first: 5) { edges { cursor node {" + JOB_ALL_FIELDS + "} } } }"
_LOOKUP_QUERY = "query($id: ID!) { job(id: $id) {" + JOB_ALL_FIELDS + "} }"

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def broken_records(draw: Any) -> Any:
    """A real job with some values (top-level or one level down) replaced by any JSON."""
    record = json.loads(json.dumps(draw(st.sampled_from(_REAL_JOBS))))
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(sorted(record)))
        target = record
        nested = record[key]
        if (
            isinstance(nested, list)
            and nested
            and isinstance(nested[0], dict)
            and draw(st.booleans())
        ):
            target = nested[0]
            key = draw(st.sampled_from(sorted(target) or ["id"]))
        target[key] = draw(_json_values)
    if draw(st.integers(0, 9)) == 0:
        return draw(_json_values)  # not even an object
    return record


@st.composite
def broken_pages(draw: Any) -> Any:
    """A page as Kombo might break it: bad records, or a bad envelope."""
    results = draw(st.lists(broken_records(), min_size=1, max_size=3))
    page: Any = {"status": "success", "data": {"next": None, "results": results}}
    shape = draw(st.integers(0, 9))
    if shape == 0:
        page["data"]["results"] = draw(_json_values)
    elif shape == 1:
        page["data"]["next"] = draw(_json_values)
    elif shape == 2:
        page["data"] = draw(_json_values)
    elif shape == 3:
        page = draw(_json_values)
    return page


@settings(FUZZ, max_examples=150)
@given(page=broken_pages(), by_id=st.booleans())
def test_bad_upstream_data(http: httpx.Client, sandbox_url: str, page: Any, by_id: bool):
    """Whatever Kombo sends with a 200, the answer is coded: UPSTREAM_ERROR where its data
    is wrong, never INTERNAL_SERVER_ERROR, never a 500."""
    faults = f"{sandbox_url}/_sandbox/faults"
    httpx.delete(faults).raise_for_status()
    httpx.post(
        faults, json={"faults": [{"status": 200, "body": page, "times": 50}]}
    ).raise_for_status()
    try:
        if by_id:
            body = {"query": _LOOKUP_QUERY, "variables": {"id": _REAL_JOBS[0]["id"]}}
        else:
            body = {"query": _ALL_FIELDS_QUERY}
        send(http, "upstream", Sent("POST", None, [JSON], dumps(body)))
    finally:
        httpx.delete(faults).raise_for_status()


def test_fuzzed_enough():
    """Runs last (file order): the tests above sent at least 1,000 generated GraphQL
    requests (queries with their variables), and HTTP-level garbage besides."""
    shown = f"requests sent: {dict(SENT)}; run the whole module"
    assert SENT["schema"] + SENT["garbage"] + SENT["federation"] >= 1_000, shown
    assert SENT["http"] + SENT["hostile"] >= 250, shown
    assert SENT["upstream"] >= 150, shown
