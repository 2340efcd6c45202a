"""`customs-stream audit`: cameral audit cases for officers and the audited party.

Writing commands (open, deliver, pay, explain, accept, reject) check the event against audit-event/1 and
send it to `audit.events`, keyed by its case id; the case agent (`customs-stream worker --domains audit`)
decides whether it fits the case and publishes the case, or a rejection/1 on `rejections`. Reading commands
(show, list) read the latest `audit-case/1` of each case from `audit.cases`. `deadlines` needs no broker.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import uuid

import click
import orjson

from stream.audit.agents import kazakhstan_today
from stream.audit.calendar import CalendarError, answer_by, comply_by, load_calendar
from stream.audit.events import EVENT_SCHEMA, validate_event
from stream.audit.ids import case_id_for
from stream.runtime.topics import AUDIT_CASES, AUDIT_EVENTS

STATES = ("opened", "notified", "complied", "disputed", "explanation_accepted", "unfulfilled")
READ_TIMEOUT_SECONDS = 30.0


class Day(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            if len(value) != 10:
                raise ValueError
            return dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


DAY = Day()
_broker_option = click.option("--broker", "broker_url", default=None, metavar="URL",
                              help="Kafka URL (default: KAFKA_BROKER)")
_on_option = click.option("--on", "on", type=DAY, default=None,
                          help="date of the fact, YYYY-MM-DD (default: today in Kazakhstan, UTC+5)")
_event_id_option = click.option("--event-id", default=None,
                                help="id of this event; send the same id again to retry without doubling it "
                                     "(default: a new random id)")


@click.group("audit", context_settings={"help_option_names": ["-h", "--help"]})
def audit():
    """Cameral customs audit cases and their deadlines.

    A case is opened by a risk selection (automatically) or by an officer (open). The notification on the
    elimination of violations is delivered (deliver); the audited party then has 20 working days from the
    day after delivery (comply_by) to pay the additional accruals (pay, in parts if it wishes) or to send an
    explanation (explain). Customs answers an explanation within 10 working days of its receipt
    (answer_by): accept, or reject (the notification is unfulfilled). Nothing by comply_by: unfulfilled.

    \b
    Examples:
      customs-stream audit deadlines --delivered 2026-03-02
      customs-stream audit open --declaration D-1 --accruals 18450.00 --findings "unit value under the index"
      customs-stream audit deliver CASE-D-1 --on 2026-03-02
      customs-stream audit pay CASE-D-1 18450.00
      customs-stream audit show CASE-D-1
      customs-stream audit list --state notified
    """


# -- deadlines -----------------------------------------------------------------------------------

@audit.command("deadlines")
@click.option("--delivered", type=DAY, required=True, help="day the notification was delivered")
@click.option("--explanation-received", "received", type=DAY, default=None,
              help="day customs received the party's explanation")
@click.option("--calendar", "calendar_path", type=click.Path(dir_okay=False), default=None,
              help="working-day calendar file (default: CUSTOMS_AUDIT_CALENDAR, the shipped one)")
def deadlines(delivered, received, calendar_path):
    """Print the case's deadlines as JSON: {"comply_by": ..., "answer_by": ... or null}.

    comply_by is the 20th working day counted from the day after delivery; answer_by the 10th working day
    counted from the day after the explanation's receipt. Working days are Kazakhstan's (weekends, public
    holidays, decree transfers). A date the calendar does not cover is an error (exit 2), never a guess.
    A deadline counted over a year the calendar holds only provisionally (its decree on transfers of days
    off not yet published) gets "provisional": true, and a note on stderr says what is not yet known.
    """
    try:
        calendar = load_calendar(calendar_path)
        comply = comply_by(delivered, calendar)
        answer = answer_by(received, calendar) if received is not None else None
    except CalendarError as exc:
        raise click.UsageError(str(exc)) from None
    if received is not None and received < delivered:
        raise click.BadParameter("the explanation cannot be received before the notification was delivered",
                                 param_hint="--explanation-received")
    if received is not None and received > comply:
        click.echo(f"note: the explanation came after comply_by ({comply}): the notification is unfulfilled",
                   err=True)
    out = {"comply_by": comply.isoformat(), "answer_by": answer.isoformat() if answer else None}
    # a count over a year whose decree on days off is not published yet may still move: say so
    provisional = sorted(set(calendar.provisional_between(delivered, comply))
                         | set(calendar.provisional_between(received, answer) if answer else ()))
    if provisional:
        out["provisional"] = True
        click.echo(f"note: provisional: counted over {', '.join(map(str, provisional))}, which the calendar holds "
                   f"from the statutory days off only (see the calendar's warning)", err=True)
    click.echo(json.dumps(out))


# -- writing events ------------------------------------------------------------------------------

def _bootstrap(broker_url: str | None) -> str:
    from stream.broker import bootstrap_of
    from stream.settings import env
    return bootstrap_of(broker_url or env("KAFKA_BROKER"))


def _send(broker_url: str | None, doc: dict) -> None:
    problem = validate_event(doc)
    if problem is not None:
        reason, detail = problem
        raise click.UsageError(f"not a valid audit event ({reason}): {detail}")
    bootstrap = _bootstrap(broker_url)

    async def go():
        from aiokafka import AIOKafkaProducer
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
        try:  # stopped even when it never started (an unreachable broker)
            await producer.start()
            await producer.send_and_wait(AUDIT_EVENTS, orjson.dumps(doc), key=doc["case_id"].encode())
        finally:
            await producer.stop()

    try:
        asyncio.run(go())
    except Exception as exc:  # the broker is down or unreachable: say so, no traceback
        raise click.ClickException(f"could not send to {bootstrap}: {type(exc).__name__}: {exc}") from None
    click.echo(orjson.dumps(doc).decode())


def _event(case_id: str, kind: str, on: dt.date | None, event_id: str | None, **fields) -> dict:
    day = on or kazakhstan_today(dt.datetime.now(dt.timezone.utc).timestamp())
    return {"schema": EVENT_SCHEMA, "case_id": case_id, "kind": kind, "on": day.isoformat(),
            "event_id": event_id or f"EV-{uuid.uuid4()}", **fields}


@audit.command("open")
@click.option("--declaration", "declaration_id", required=True, help="declaration_id of the audited declaration")
@click.option("--accruals", required=True, metavar="KZT",
              help="additional accruals (duty, excise, VAT) in KZT, e.g. 18450.00")
@click.option("--findings", required=True, help="what the audit found (shown to the audited party)")
@click.option("--case", "case_id", default=None, help="case id (default: the declaration's, CASE-<declaration_id>)")
@_on_option
@_event_id_option
@_broker_option
def open_case(declaration_id, accruals, findings, case_id, on, event_id, broker_url):
    """Open a case for a declaration (or amend its findings and accruals before notification)."""
    _send(broker_url, _event(case_id or case_id_for(declaration_id), "opened", on, event_id,
                             declaration_id=declaration_id, findings=findings, additional_accruals=accruals))


def _simple(name: str, kind: str, text: str):
    @audit.command(name, help=text)
    @click.argument("case_id")
    @_on_option
    @_event_id_option
    @_broker_option
    def command(case_id, on, event_id, broker_url):
        _send(broker_url, _event(case_id, kind, on, event_id))
    return command


deliver = _simple("deliver", "notification_delivered",
                  "Record that the notification on the elimination of violations was delivered (starts comply_by).")
explain = _simple("explain", "explanation_received",
                  "Record that customs received the party's explanation by comply_by (starts answer_by).")
accept = _simple("accept", "explanation_accepted", "Customs accepts the explanation: the case ends in the party's favour.")
reject = _simple("reject", "explanation_rejected",
                 "Customs rejects the explanation: the notification is designated unfulfilled.")


@audit.command("pay")
@click.argument("case_id")
@click.argument("amount", metavar="KZT")
@_on_option
@_event_id_option
@_broker_option
def pay(case_id, amount, on, event_id, broker_url):
    """Record a payment of additional accruals (partial payments add up; paid in full by comply_by: complied)."""
    _send(broker_url, _event(case_id, "paid", on, event_id, amount=amount))


# -- reading cases -------------------------------------------------------------------------------

def latest_cases(bootstrap: str, timeout: float = READ_TIMEOUT_SECONDS) -> dict[str, dict]:
    """The latest audit-case/1 of every case on audit.cases (highest version), read to the end of the topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def go():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None)
        cases: dict[str, dict] = {}
        try:
            await consumer.start()
            partitions = consumer.partitions_for_topic(AUDIT_CASES)
            if not partitions:
                await consumer.force_metadata_update()
                partitions = consumer.partitions_for_topic(AUDIT_CASES) or set()
            tps = [TopicPartition(AUDIT_CASES, p) for p in sorted(partitions)]
            if not tps:
                return cases
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            remaining = {tp for tp in tps if ends[tp] > 0}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while remaining and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    for message in messages:
                        try:
                            doc = orjson.loads(message.value)
                        except orjson.JSONDecodeError:
                            continue
                        if isinstance(doc, dict) and doc.get("schema") == "audit-case/1":
                            known = cases.get(doc.get("case_id"))
                            if known is None or doc.get("version", 0) >= known.get("version", 0):
                                cases[doc["case_id"]] = doc
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
            if remaining:
                raise click.ClickException(f"{AUDIT_CASES} was not read to its end within {timeout:.0f} s")
        finally:
            await consumer.stop()
        return cases

    try:
        return asyncio.run(go())
    except click.ClickException:
        raise
    except Exception as exc:
        raise click.ClickException(f"could not read {AUDIT_CASES} from {bootstrap}: {type(exc).__name__}: {exc}") \
            from None


@audit.command("show")
@click.argument("case_id")
@_broker_option
def show(case_id, broker_url):
    """Print the latest state of one case (audit-case/1 JSON); exit 1 when no such case is known."""
    cases = latest_cases(_bootstrap(broker_url))
    if case_id not in cases:
        click.echo(f"no case {case_id} on {AUDIT_CASES}", err=True)
        sys.exit(1)
    click.echo(orjson.dumps(cases[case_id], option=orjson.OPT_INDENT_2).decode())


@audit.command("list")
@click.option("--state", type=click.Choice(STATES), multiple=True, help="only cases in this state (repeatable)")
@click.option("--overdue", is_flag=True, help="only cases past a deadline without its act")
@_broker_option
def list_cases(state, overdue, broker_url):
    """Print the latest state of every case, one JSON line each, largest outstanding accruals first."""
    cases = latest_cases(_bootstrap(broker_url)).values()
    chosen = [c for c in cases if (not state or c.get("state") in state) and (not overdue or c.get("overdue"))]
    chosen.sort(key=lambda c: (-_tiyn(c.get("outstanding")), c.get("case_id", "")))
    for case in chosen:
        click.echo(orjson.dumps(case).decode())


def _tiyn(amount) -> int:
    from stream.money import parse_tiyn
    try:
        return parse_tiyn(amount)
    except (TypeError, ValueError):
        return 0
