"""What a full refresh of the report roll-ups costs, in-process, on an existing bench database.

    DATABASE_URL=postgres://…/<db>_bench python bench/refresh_cost.py [CODE_DIR] [--conversations N]

Takes N conversations of the reporting scenario's inbox (every k-th, so all 90 days), forgets what they
contributed (their ReportState rows) and refreshes them with the code of CODE_DIR (default: this checkout): each
is recomputed whole from its raw rows and all its cycles are written — the full-refresh path of the drain and of
a rebuild — then everything is rolled back, so the database is left as it was. Prints the CPU time of this process
(`time.process_time`) and the wall time per conversation; alternate two checkouts back to back for a before/after.
"""

from __future__ import annotations

import json
import time

import inprocess  # bench/, this script's directory


def main() -> None:
    parser = inprocess.parser()
    parser.add_argument("--conversations", type=int, default=3000)
    args = parser.parse_args()
    inprocess.django_in(args.code)
    from django.db import transaction

    from inbox.models import Conversation, Inbox, ReportState
    from inbox.reports import rollups

    inbox = Inbox.objects.get(name="Bench reporting")
    ids = list(Conversation.objects.filter(inbox=inbox).order_by("pk").values_list("pk", flat=True))
    ids = ids[:: max(1, len(ids) // args.conversations)][: args.conversations]
    with transaction.atomic():
        ReportState.objects.filter(conversation_id__in=ids).delete()
        c0, w0 = time.process_time(), time.perf_counter()
        rollups.conversations_refresh(ids)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        transaction.set_rollback(True)
    print(
        json.dumps(
            {
                "code": args.code,
                "conversations": len(ids),
                "cpu_us_per_conversation": round(1e6 * cpu / len(ids), 1),
                "wall_us_per_conversation": round(1e6 * wall / len(ids), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
