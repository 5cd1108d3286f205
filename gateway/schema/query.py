"""The `Query` root: `jobs`, `job`, `node`, `nodes`.

Every argument is checked before any upstream call: `first`, the filter's IDs and
values, the integration, the cursor. Resolvers return Kombo's dicts; the types in
`gateway.schema.types` read them (`graphql_type=` names the GraphQL type).
"""

from __future__ import annotations

from typing import Any

import strawberry

from gateway.schema.context import Context
from gateway.schema.fastpath.selection import connection_reads
from gateway.schema.filters import JobFilter, list_arguments, to_job_query
from gateway.schema.ids import parse_job_ids
from gateway.schema.pagination import (
    cursor_binding,
    read_connection,
    start_position,
    validate_first,
)
from gateway.schema.types import Job, JobConnection, Node
from gateway.upstream.kombo import JobsPage

Info = strawberry.Info[Context, None]
UNSET: Any = strawberry.UNSET

_EMPTY_CONNECTION: dict[str, Any] = {
    "edges": [],
    "nodes": [],
    "page_info": {
        "has_next_page": False,
        "has_previous_page": False,
        "start_cursor": None,
        "end_cursor": None,
    },
}


@strawberry.type
class Query:
    @strawberry.field(
        graphql_type=JobConnection,
        description="Jobs of the request's integration, filtered, as a Relay connection. "
        "`first`: 0 to 250, default 50. `after`: any edge's cursor from the same filter.",
    )
    async def jobs(
        self,
        info: Info,
        first: int | None = UNSET,
        after: str | None = UNSET,
        filter: JobFilter | None = UNSET,
    ) -> Any:
        count = validate_first(None if first is UNSET else first)
        job_filter = None if filter is UNSET else filter
        for name, values in list_arguments(job_filter):
            info.context.check_id_count(len(values), f"filter.{name}")
        query = to_job_query(job_filter)
        integration = info.context.require_integration()
        if query is None:
            return _EMPTY_CONNECTION
        binding = cursor_binding(integration, query.to_params(), key=info.context.cursor_key)
        start = start_position(binding, after=None if after is UNSET else after, first=count)
        kombo = info.context.kombo
        reads = connection_reads(info)

        async def fetch(cursor: str | None, page_size: int) -> JobsPage:
            return await kombo.list_jobs(
                integration, query, page_size=page_size, cursor=cursor, keys=reads.job_keys
            )

        return await read_connection(fetch, start, count, binding=binding, with_edges=reads.edges)

    @strawberry.field(
        graphql_type=Job | None,
        description="A job by Kombo ID or Job global ID, deleted ones included; "
        "null when not found.",
    )
    async def job(self, info: Info, id: strawberry.ID) -> Any:
        return await info.context.load_job(id)

    @strawberry.field(
        graphql_type=Node | None,
        description="The object with this global ID (Jobs; a Kombo job ID works too).",
    )
    async def node(self, info: Info, id: strawberry.ID) -> Any:
        return await info.context.load_job(id)

    @strawberry.field(
        graphql_type=list[Node | None],
        description="Objects by global ID, in order; null where not found. "
        "One malformed ID fails the field.",
    )
    def nodes(self, info: Info, ids: list[strawberry.ID]) -> Any:
        info.context.check_id_count(len(ids), "ids")
        kombo_ids = parse_job_ids(ids)
        integration = info.context.require_integration()
        loader = info.context.loaders.jobs(integration)
        # One awaitable per item: an ID that fails (not one that is unknown: that is null)
        # fails its own item, not the whole list.
        return [loader.load(kombo_id) for kombo_id in kombo_ids]
