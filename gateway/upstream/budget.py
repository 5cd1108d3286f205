"""A budget of Kombo calls for one HTTP request, whatever it holds.

Usage::

    budget = CallBudget(100)          # one per HTTP request (shared by a batch's operations)
    budget.spend()                    # before each Kombo call, retries included

Why: one small request can otherwise fan out into thousands of Kombo calls (a batch of
`nodes` full of unknown IDs, aliases that walk long page chains), burning the quota
every caller of the same Kombo key shares. Low in the import order: the upstream side
spends it, `gateway.schema.error_codes` maps its refusal onto BAD_USER_INPUT.
"""

from __future__ import annotations

BUDGET_SETTING = "GATEWAY_MAX_UPSTREAM_CALLS"


class CallBudgetSpent(Exception):
    """The request has made all the Kombo calls it may; what still needs Kombo fails."""


class CallBudget:
    """At most `limit` Kombo calls; `spend` raises `CallBudgetSpent` past that."""

    __slots__ = ("limit", "spent")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self) -> None:
        if self.spent >= self.limit:
            raise CallBudgetSpent(
                f"This request needs more than {self.limit} Kombo calls ({BUDGET_SETTING}); "
                "ask for fewer pages, aliases, operations or unknown IDs per request"
            )
        self.spent += 1
