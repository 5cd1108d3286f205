"""`kombo-gateway serve | sandbox | schema | health | token | documents check` (also
`python -m gateway`).

`serve` with no `KOMBO_API_KEY` (and no pass-through of callers' keys to a configured
Kombo) starts the embedded sandbox as a child process on a free loopback port and
points the gateway at it over real HTTP, and the sandbox's webhooks at the gateway's
`POST /webhooks/kombo` (`sandbox_webhooks`), so `make run` needs no key and behaves like
production. Settings reach uvicorn's workers through the environment
(`serving.serving_app`, then `gateway.http.app:app_from_env`), so `--workers N` works the
same way.

This module parses the command line, decides what `serve` serves and says so; how it
is served (the listening socket, workers, draining on a stop, children that die with
the gateway, JSON logs from uvicorn) is `gateway.http.serving`.

`documents check FILE` is for a frontend's CI: it checks a persisted-documents file
(`gateway.schema.trusted_documents`) exactly as `serve` would at start-up, with the
limits this environment's settings give, and lists each document with its verdict.
`serve` runs the same check once before anything starts, so a bad document is one
clean message, not a traceback from every worker.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from gateway.config import (
    SANDBOX_API_KEY,
    SANDBOX_INTEGRATION_IDS,
    ConfigError,
    Settings,
)
from gateway.http.serving import (
    LOOPBACK,
    exit_on_sigterm,
    listen,
    listen_problem,
    sandbox_process,
    serve_in_process,
    serving_app,
    supervise,
    uvicorn_log_config,
    uvicorn_options,
    watch_parent,
)
from gateway.http.webhook_signature import WEBHOOK_PATH

if TYPE_CHECKING:
    from gateway.schema.trusted_documents import CheckedDocuments, FoundDocument

DEFAULT_HOST = LOOPBACK
DEFAULT_PORT = 8000
DEFAULT_SANDBOX_PORT = 8001
#: `serve`'s exit status when the app failed to start (uvicorn's).
STARTUP_FAILURE = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser(os.environ)
    args = parser.parse_args(argv)
    if args.command == "schema":
        return _schema(federation=args.federation)
    if args.command == "sandbox":
        return _sandbox(args.host, args.port, args.watch_parent)
    if args.command == "health":
        return _health(args.url or _health_url(args.host, args.port), args.timeout)
    if args.command == "token":
        return _token(args.name, args.integration, args.default)
    if args.command == "documents":
        return _documents_check(args.file, as_json=args.json)
    return _serve(args.host, args.port, args.workers)


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _PortFromEnvironment(str):
    """`GATEWAY_PORT` as `--port`'s default: an invalid one is reported under the
    variable's name (`_port`), not as if it had been typed."""


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; `serve` and `health` take their address defaults from
    `GATEWAY_HOST`/`GATEWAY_PORT`, so a container's health check follows the port
    its server was configured with."""
    host = environ.get("GATEWAY_HOST", "").strip() or DEFAULT_HOST
    port: int | str = DEFAULT_PORT
    if environ.get("GATEWAY_PORT", "").strip():
        # A string default goes through `type` (argparse does so when the flag is absent).
        port = _PortFromEnvironment(environ["GATEWAY_PORT"].strip())
    defaults = _DefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="kombo-gateway", description="GraphQL gateway over Kombo's ATS jobs API."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the gateway (on the embedded sandbox without KOMBO_API_KEY)",
        description="Run the gateway. Without KOMBO_API_KEY it serves the embedded Kombo "
        "sandbox's invented jobs and says so, unless GATEWAY_ALLOW_SANDBOX=false, which "
        "makes it refuse to start instead (what a deployment wants).",
        formatter_class=defaults,
    )
    serve.add_argument(
        "--host",
        default=host,
        help="address to listen on, 0.0.0.0 for every interface (env: GATEWAY_HOST)",
    )
    serve.add_argument(
        "--port",
        type=_port,
        default=port,
        help="port to listen on, 1-65535 (env: GATEWAY_PORT)",
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes sharing the port (each with its own connections to Kombo)",
    )
    sandbox = commands.add_parser(
        "sandbox",
        help="run only the Kombo-compatible sandbox",
        description="Run only the Kombo-compatible sandbox REST server (under /v1); it "
        "prints the API key and integration IDs it accepts. With SANDBOX_WEBHOOK_URL and "
        "SANDBOX_WEBHOOK_SECRET set, a job changed through POST /_sandbox/jobs/changes "
        "sends Kombo's signed data-changed webhook there.",
        formatter_class=defaults,
    )
    sandbox.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    sandbox.add_argument(
        "--port", type=_port, default=DEFAULT_SANDBOX_PORT, help="port to listen on (1-65535)"
    )
    # `serve`'s own sandbox: stop when the gateway dies, however it dies (`watch_parent`).
    sandbox.add_argument("--watch-parent", type=int, metavar="PID", help=argparse.SUPPRESS)
    schema = commands.add_parser("schema", help="print the SDL")
    schema.add_argument(
        "--federation", action="store_true", help="print the Federation 2 subgraph SDL"
    )
    health = commands.add_parser(
        "health",
        help="exit 0 when a running gateway answers its health check (for containers)",
        description="Check a running gateway's /healthz: exit 0 and print `healthy`, or "
        "exit 1 and print `unhealthy: <url>: <reason>`. The address defaults to serve's "
        "(GATEWAY_HOST, GATEWAY_PORT); a wildcard host (0.0.0.0, ::) is checked on loopback.",
        formatter_class=defaults,
    )
    health.add_argument("--host", default=host, help="the gateway's address (env: GATEWAY_HOST)")
    health.add_argument(
        "--port",
        type=_port,
        default=port,
        help="the gateway's port, 1-65535 (env: GATEWAY_PORT)",
    )
    health.add_argument(
        "--url", help="the full URL to check instead (e.g. http://10.0.0.5:8000/healthz)"
    )
    health.add_argument(
        "--timeout",
        type=float,
        default=HEALTH_TIMEOUT,
        help="seconds to wait for an answer (under the health check's own timeout, so "
        "the reason is printed)",
    )
    token = commands.add_parser(
        "token",
        help="make a gateway access token and the GATEWAY_TOKENS value that configures it",
        description="Make a gateway access token (printed once, stored nowhere) and print "
        "a GATEWAY_TOKENS value listing it, ready to paste, plus its entry to append to a "
        "list already configured (GATEWAY_TOKENS, or the file GATEWAY_TOKENS_FILE names).",
    )
    token.add_argument(
        "--name", required=True, type=_token_name, help="who the token is for (shown in logs)"
    )
    scope = token.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--integration",
        action="append",
        type=_integration_id,
        metavar="ID",
        help="an integration it may use, e.g. personio:CBNMt7dSNCzBdnRTx87dev4E (repeat for more)",
    )
    scope.add_argument(
        "--all-integrations",
        action="store_true",
        help='let it use every integration ("integrations": "*")',
    )
    token.add_argument(
        "--default",
        type=_integration_id,
        metavar="ID",
        help="the integration used when a request names none (one of --integration)",
    )
    _add_documents_parser(commands)
    return parser


def _add_documents_parser(commands: Any) -> None:
    """`documents check FILE [--json]` (`commands`: argparse's private subparsers type)."""
    documents = commands.add_parser(
        "documents", help="check a frontend's persisted documents against the schema"
    )
    actions = documents.add_subparsers(dest="documents_command", required=True)
    check = actions.add_parser(
        "check",
        help="check a persisted-documents file as serve would (exit 1 on problems)",
        description="Check every document of a persisted-documents file (relay-compiler's "
        "persisted queries, or an Apollo persisted query manifest) against the schema "
        "this gateway serves, with the limits this environment's settings give "
        "(GATEWAY_MAX_DEPTH, GATEWAY_MAX_FIELDS, GATEWAY_MAX_ALIASES, GATEWAY_MAX_TOKENS, "
        "GATEWAY_MAX_DOCUMENT_BYTES, GATEWAY_INTROSPECTION), exactly as serve checks "
        "GATEWAY_PERSISTED_DOCUMENTS at start-up. Prints the format, one line per "
        "document (its id, its operations, OK or its problem) and a summary.",
        epilog="Exit status: 0 every document is fine, 1 some have problems, 2 the file "
        "cannot be read or is neither format (or a setting is invalid).",
    )
    check.add_argument("file", metavar="FILE", help="the persisted-documents JSON file")
    check.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object instead: {"file", "format", "documents": '
        '[{"id", "operations", "sha256"}], "problems": [...]}',
    )


def _port(value: str) -> int:
    """A TCP port to listen on or connect to: 1-65535 (0, "any free port", is not one)."""
    source = "GATEWAY_PORT=" if isinstance(value, _PortFromEnvironment) else ""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{source}{value!r} is not a port number (1-65535)")
    return number


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number


def _integration_id(value: str) -> str:
    """A Kombo integration ID, checked as the gateway checks `X-Integration-Id`."""
    from gateway.errors import BadUserInput
    from gateway.schema.context import requested_integration

    try:
        integration = requested_integration(value)
    except BadUserInput:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a Kombo integration ID (like personio:CBNMt7dSNCzBdnRTx87dev4E)"
        ) from None
    assert integration is not None  # only None for a missing header
    return integration


def _token_name(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value.strip()


def _token(name: str, integrations: list[str] | None, default: str | None) -> int:
    """Print a new token (shown once, never stored) and the setting that configures it.

    `integrations` None: every integration (`--all-integrations`).
    """
    from gateway.config import TokenSpec
    from gateway.http.access import hash_token, new_token

    if default is not None and integrations and default not in integrations:
        print("kombo-gateway: --default must be one of --integration", file=sys.stderr)
        return 2
    token = new_token()
    allowed = frozenset(integrations) if integrations else None
    entry = json.dumps(TokenSpec(name, hash_token(token), allowed, default).entry())
    print(f"Token for {name} (give it to them now: it is shown once and stored nowhere):")
    print(f"  {token}")
    print()
    print("To configure only this token, set:")
    print(f"  GATEWAY_TOKENS={shlex.quote(f'[{entry}]')}")
    print()
    print(
        "To add it to tokens already configured, append this entry to the JSON list in "
        "GATEWAY_TOKENS, or in the file GATEWAY_TOKENS_FILE names (changes to that file "
        "apply without a restart):"
    )
    print(f"  {entry}")
    return 0


#: `health`'s default wait: under a container health check's usual 3 s timeout, so the
#: reason is printed before the check is killed.
HEALTH_TIMEOUT = 2.5
#: Characters of an unhealthy answer's body that `health` prints.
_HEALTH_BODY_CHARS = 200


def _health_url(host: str, port: int) -> str:
    """The URL of `/healthz` on a gateway serving on `host`:`port`."""
    return _local_url(host, port, "/healthz")


def _local_url(host: str, port: int, path: str) -> str:
    """The URL of `path` on a gateway serving on `host`:`port`, as a process of this
    machine reaches it: a wildcard address (every interface) is reached on loopback."""
    host = {"0.0.0.0": DEFAULT_HOST, "": DEFAULT_HOST, "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def _health(url: str, timeout: float) -> int:
    """Exit status 0 when `url` answers 200, else 1 and the reason (a health check's
    output is what an operator sees first)."""
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.TimeoutException:
        reason = f"no answer within {timeout:g} s"
    except httpx.HTTPError as exc:
        reason = _connection_problem(exc)
    else:
        if response.status_code == 200:
            print("healthy")
            return 0
        body = " ".join(response.text.split())
        if len(body) > _HEALTH_BODY_CHARS:
            body = body[:_HEALTH_BODY_CHARS] + "..."
        reason = f"HTTP {response.status_code}" + (f": {body}" if body else "")
    print(f"unhealthy: {url}: {reason}")
    return 1


def _connection_problem(exc: httpx.HTTPError) -> str:
    """`exc` in a few words ("connection refused"), not httpx's `[Errno 111] ...`."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[0].lower() + cause.strerror[1:]
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    return text or type(exc).__name__


def _schema(*, federation: bool) -> int:
    from gateway.schema.build import client_sdl, subgraph_sdl

    sys.stdout.write(subgraph_sdl() if federation else client_sdl())
    return 0


def _sandbox(host: str, port: int, parent: int | None = None) -> int:
    """Run the sandbox; with `parent` (`serve`'s own sandbox), only as long as it lives."""
    if parent is not None:
        watch_parent(parent)
    import uvicorn

    from gateway.observability.logs import configure_logging
    from gateway.sandbox.app import create_sandbox_app

    webhook_url = os.environ.get(SANDBOX_WEBHOOK_URL) or None
    try:
        app = create_sandbox_app(
            webhook_url=webhook_url, webhook_secret=os.environ.get(SANDBOX_WEBHOOK_SECRET) or None
        )
    except ValueError as exc:  # its message never holds the secret
        variables = f"{SANDBOX_WEBHOOK_URL} and {SANDBOX_WEBHOOK_SECRET}"
        print(f"kombo-gateway sandbox: {variables}: {exc}", file=sys.stderr)
        return 2
    print(f"Kombo sandbox on http://{host}:{port}/v1 (KOMBO_BASE_URL=http://{host}:{port}/v1)")
    print(f"  API key:      {SANDBOX_API_KEY}")
    for integration in SANDBOX_INTEGRATION_IDS:
        print(f"  integration:  {integration}")
    if webhook_url is not None:
        print(f"  webhooks:     data-changed to {webhook_url}")
    sys.stdout.flush()
    # JSON like the gateway's: `serve` runs the sandbox with the gateway's stderr.
    configure_logging("WARNING")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=uvicorn_log_config(),
    )
    return 0


def _serve(host: str, port: int, workers: int) -> int:
    import uvicorn

    from gateway.observability.logs import configure_logging

    try:
        settings = Settings.from_env(os.environ)
        if settings.persisted_documents is not None:
            # Before anything starts: a bad persisted-documents file is one message.
            from gateway.http.app import prepare_for_serving

            prepare_for_serving(settings)
    except ConfigError as exc:
        print(f"kombo-gateway: {exc}", file=sys.stderr)
        return 2
    sandboxed = needs_embedded_sandbox(settings, os.environ)
    if sandboxed and not settings.allow_sandbox:
        print(
            "kombo-gateway: no KOMBO_API_KEY set, and GATEWAY_ALLOW_SANDBOX=false forbids "
            "serving the embedded sandbox's invented jobs instead: set KOMBO_API_KEY (or "
            "GATEWAY_KOMBO_KEY_PASSTHROUGH=true with KOMBO_BASE_URL or KOMBO_REGION), or "
            "GATEWAY_ALLOW_SANDBOX=true to try the gateway on the sandbox",
            file=sys.stderr,
        )
        return 2
    # Before anything starts (the sandbox, workers): a port that is taken, or a host
    # that is not this machine's, fails here, not after GraphiQL's URL was printed.
    try:
        sock = listen(host, port)
    except OSError as exc:
        print(f"kombo-gateway: {listen_problem(host, port, exc)}", file=sys.stderr)
        return 2
    # Before uvicorn logs anything: its records reach the root logger's JSON handler.
    configure_logging(settings.log_level)
    # uvicorn drains on SIGTERM, then re-raises it; turning it into SystemExit lets the
    # `with` below stop the sandbox instead of the process dying with it still running.
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)  # the server closes it too; closing twice is harmless
        if workers > 1:
            # The workers share their metrics: `/metrics`, whichever worker answers,
            # reports the sum over all of them, replaced workers included.
            from gateway.observability.metrics import shared_between_workers

            try:
                stack.enter_context(shared_between_workers())
            except ConfigError as exc:
                print(f"kombo-gateway: {exc}", file=sys.stderr)
                return 2
        if sandboxed:
            webhooks = sandbox_webhooks(settings, host, port)
            sandbox_url = stack.enter_context(sandbox_process(environment=webhooks))
            os.environ["KOMBO_API_KEY"] = SANDBOX_API_KEY
            os.environ["KOMBO_BASE_URL"] = sandbox_url
            os.environ.setdefault("KOMBO_INTEGRATION_ID", SANDBOX_INTEGRATION_IDS[0])
            # The workers read their settings from the environment: the same secret.
            os.environ["KOMBO_WEBHOOK_SECRET"] = webhooks[SANDBOX_WEBHOOK_SECRET]
            print(
                "No KOMBO_API_KEY set: serving the embedded Kombo sandbox "
                f"({sandbox_url}, default integration {os.environ['KOMBO_INTEGRATION_ID']}); "
                "deployments set GATEWAY_ALLOW_SANDBOX=false to refuse this. Its data-changed "
                f"webhooks go to {webhooks[SANDBOX_WEBHOOK_URL]}."
            )
        elif settings.api_key is None:
            print(
                f"Serving Kombo at {settings.base_url} with each caller's own key (pass-through)."
            )
        else:
            print(f"Serving Kombo at {settings.base_url}.")
        print(f"GraphiQL: http://{host}:{port}/graphql")
        sys.stdout.flush()
        options: dict[str, Any] = {
            "factory": True,
            "host": host,
            "port": port,
            "workers": workers,
            "log_config": uvicorn_log_config(),
            **uvicorn_options(settings),
        }
        if workers > 1 and settings.tokens_file is not None:
            # The supervisor alone watches the operator's file; workers (restarted ones
            # too) read its last good content, so they never disagree (`token_file`).
            from gateway.http.token_file import shared_tokens_file

            copy = stack.enter_context(shared_tokens_file(settings.tokens_file, settings.tokens))
            os.environ["GATEWAY_TOKENS_FILE"] = copy
        config = uvicorn.Config(f"{serving_app.__module__}:{serving_app.__name__}", **options)
        if workers > 1:
            supervise(config, sock)
        elif not serve_in_process(config, sock):
            return STARTUP_FAILURE
    return 0


#: `documents check`'s first line, by `read_documents`' format name.
_FORMAT_NAMES = {
    "relay": "relay-compiler's persisted queries",
    "apollo": "Apollo persisted query manifest",
}
#: What `documents check` reads, said when a file is not JSON at all.
_FORMATS_EXPECTED = (
    "expected relay-compiler's persisted queries (a JSON object of id to document) or an "
    "Apollo persisted query manifest"
)


def _documents_check(path: str, *, as_json: bool) -> int:
    """Check the documents of `path` as `serve` would; print them and their problems.

    Exit status 0: all fine; 1: problems (listed); 2: the file cannot be read or is
    neither format, or the environment's settings are invalid (a CI fails either way,
    but 2 says the check itself could not run).
    """
    from gateway.schema.build import QueryLimits, build_schema
    from gateway.schema.trusted_documents import (
        DocumentsFileError,
        check_documents,
        read_documents,
    )

    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"kombo-gateway: {exc}", file=sys.stderr)
        return 2
    try:
        format_name, entries = read_documents(Path(path).read_bytes())
    except OSError as exc:
        print(f"kombo-gateway: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except DocumentsFileError as exc:
        reason = str(exc)
        if not reason.startswith("expected"):
            reason = f"{reason}; {_FORMATS_EXPECTED}"
        print(f"kombo-gateway: {path}: {reason}", file=sys.stderr)
        return 2
    schema = build_schema(QueryLimits.from_settings(settings))
    checked = check_documents(format_name, entries, schema)
    if as_json:
        print(json.dumps(_documents_report(path, checked), indent=2))
    else:
        _print_documents(checked, entries)
    return 1 if checked.problems else 0


def _documents_report(path: str, checked: CheckedDocuments) -> dict[str, Any]:
    """`documents check --json`: the documents a gateway would serve, and the problems
    (each naming its id) that stop it, for tools that read the check's result."""
    return {
        "file": path,
        "format": checked.format,
        "documents": [
            {"id": d.id, "operations": list(d.operations), "sha256": d.sha256}
            for d in checked.documents
            if d.id not in checked.refused
        ],
        "problems": checked.problems,
    }


def _print_documents(checked: CheckedDocuments, entries: Sequence[FoundDocument]) -> None:
    """The format, one aligned line per id in the file's order (id, operations, OK or
    its problem), and a summary: what a developer reads in a failed CI job."""
    served = {document.id: document for document in checked.documents}
    rows: list[tuple[str, str, str]] = []
    listed: set[str] = set()
    for entry in entries:
        if entry.id in listed:
            continue  # a repeat: its problem, if any, is on the id's first line
        listed.add(entry.id)
        document = served.get(entry.id)
        operations = ", ".join(document.operations) if document else "-"
        problem = checked.refused.get(entry.id)
        rows.append((entry.id or '""', operations, f"problem: {problem}" if problem else "OK"))
    print(f"format: {checked.format} ({_FORMAT_NAMES.get(checked.format, checked.format)})")
    id_width = max((len(row[0]) for row in rows), default=0)
    operations_width = max((len(row[1]) for row in rows), default=0)
    for identifier, operations, verdict in rows:
        print(f"  {identifier:<{id_width}}  {operations:<{operations_width}}  {verdict}")
    print(f"{_count(len(rows), 'document')}, {_count(len(checked.problems), 'problem')}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


#: What the embedded sandbox reads to send its signed `data-changed` webhooks.
SANDBOX_WEBHOOK_URL = "SANDBOX_WEBHOOK_URL"
SANDBOX_WEBHOOK_SECRET = "SANDBOX_WEBHOOK_SECRET"


def sandbox_webhooks(settings: Settings, host: str, port: int) -> dict[str, str]:
    """The embedded sandbox's webhook settings: the gateway's own endpoint, and the
    gateway's secret (`KOMBO_WEBHOOK_SECRET`, else a random one made now), so editing a
    sandbox job shows in the gateway's next answer. The secret is never printed."""
    secret = settings.webhook_secret or secrets.token_urlsafe(32)
    return {
        SANDBOX_WEBHOOK_URL: _local_url(host, port, WEBHOOK_PATH),
        SANDBOX_WEBHOOK_SECRET: secret,
    }


def needs_embedded_sandbox(settings: Settings, environ: Mapping[str, str]) -> bool:
    """True when there is no Kombo to call: no `KOMBO_API_KEY`, and not pass-through to
    an upstream named by `KOMBO_BASE_URL` or `KOMBO_REGION`.

    Pass-through needs no server key (every caller brings its own), so with an upstream
    configured it must reach that upstream; with none, `make run` style start-ups (a
    developer trying pass-through) get the sandbox, whose key callers then send.
    """
    if settings.api_key is not None:
        return False
    upstream_named = any(
        environ.get(name, "").strip() for name in ("KOMBO_BASE_URL", "KOMBO_REGION")
    )
    return not (settings.key_passthrough and upstream_named)
