"""A local fake of the Stripe API endpoints the billing provider uses.

The real ``stripe`` client talks to it over HTTP on 127.0.0.1 (``api_base``), form-encoded as
the library sends it, and gets Stripe-shaped objects and errors back. It enforces the rules
the provider must respect: required fields, the meter event timestamp window (35 days back,
5 minutes ahead), meter event identifier uniqueness (for 24 hours after the first copy arrived,
as Stripe's), the 24-hour cancellation window,
idempotency keys (same key and parameters: the first answer is replayed; other parameters:
an idempotency_error). Faults on demand: ``fail_next(n)`` answers n requests with a 500 before
doing anything; ``drop_rate``/``drop_next(n)`` apply a request and then close the connection
without answering, as a lost response would; ``forget_idempotency_keys()`` is Stripe pruning
keys older than 24 hours.

Customer search (``GET /v1/customers/search``) understands ``metadata['key']:'value'`` clauses
joined by ``AND`` and is eventually consistent as Stripe's is ("data is searchable in less than
a minute; during outages up to an hour behind"): a customer created or changed less than
``search_lag_seconds`` ago (by the fake's clock) is not found. Lists are consistent at once.

Cancelling a subscription with ``invoice_now`` issues a final invoice (``invoices``) billing
every live meter event of the customer on the subscription's meters not yet invoiced (real
Stripe bills the period's events; the tests only need "was it on the final invoice").

Only the endpoints used are implemented: customers (and their search), subscriptions, prices,
billing meters, meter events, meter event adjustments, meter event summaries.
"""

import json
import random
import re
import secrets
import threading
import time
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

DAY = 86400


class StripeFailure(Exception):
    def __init__(self, status: int, error_type: str, message: str, *, code: str = "", param: str = ""):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": error_type, "message": message, "code": code, "param": param}}
        if not code:
            del self.body["error"]["code"]
        if not param:
            del self.body["error"]["param"]


def invalid(message: str, *, param: str = "", code: str = "parameter_invalid", status: int = 400) -> StripeFailure:
    return StripeFailure(status, "invalid_request_error", message, code=code, param=param)


def missing(param: str) -> StripeFailure:
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def no_such(kind: str, object_id: str, param: str = "id") -> StripeFailure:
    return invalid(f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=404)


def parse_form(body: str) -> dict:
    """``a[b][0][c]=v`` pairs into nested dicts and lists, as Stripe reads them."""
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _listify(root)


def _listify(node):
    if isinstance(node, dict):
        converted = {key: _listify(value) for key, value in node.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return node


def _public(stored: dict) -> dict:
    """A stored object without the fake's bookkeeping keys (``_searchable_at``, ``_canceled``)."""
    return {key: value for key, value in stored.items() if not key.startswith("_")}


class FakeStripe:
    def __init__(self, *, api_key: str = "sk_test_fake", seed: int = 7):
        self.api_key = api_key
        self.lock = threading.RLock()
        self.random = random.Random(seed)
        self.clock_offset = 0.0
        self.customers: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.prices: dict[str, dict] = {}
        self.meters: dict[str, dict] = {}
        self.meter_events: dict[str, dict] = {}  # by identifier
        self.adjustments: list[dict] = []
        self.invoices: list[dict] = []
        self.search_lag_seconds = 0.0
        self.idempotency: dict[str, tuple[str, dict, int, dict]] = {}
        self.requests: list[tuple[str, str]] = []
        self.failures_left = 0
        self.failure_status = 500
        self.drops_left = 0
        self.drop_path: str | None = None
        self.drop_rate = 0.0
        self.dropped = 0
        self.latency = 0.0  # seconds each request takes before it is handled (to interleave clients)
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "FakeStripe":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.handle(self, "GET")

            def do_POST(self):
                fake.handle(self, "POST")

            def do_DELETE(self):
                fake.handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-stripe", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)
            self.server = None

    @property
    def api_base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def now(self) -> float:
        return time.time() + self.clock_offset

    # --- faults ------------------------------------------------------------------------------

    def fail_next(self, count: int, *, status: int = 500) -> None:
        with self.lock:
            self.failures_left, self.failure_status = count, status

    def drop_next(self, count: int, *, path: str | None = None) -> None:
        """Apply the next ``count`` writes (to ``path`` only, if given) and lose their answers."""
        with self.lock:
            self.drops_left, self.drop_path = count, path

    def forget_idempotency_keys(self) -> None:
        """What Stripe does with keys once they are 24 hours old: the next request is new."""
        with self.lock:
            self.idempotency.clear()

    # --- inspection (tests) ------------------------------------------------------------------

    def create_meter(self, event_name: str) -> dict:
        with self.lock:
            return self._meter_create(
                {"display_name": event_name, "event_name": event_name, "default_aggregation": {"formula": "sum"}}
            )

    def create_price(self, meter_event_name: str, *, unit_amount: int = 1) -> dict:
        with self.lock:
            meter = next(m for m in self.meters.values() if m["event_name"] == meter_event_name)
            return self._price_create(
                {
                    "currency": "usd",
                    "unit_amount": str(unit_amount),
                    "product_data": {"name": meter_event_name},
                    "recurring": {"interval": "month", "usage_type": "metered", "meter": meter["id"]},
                }
            )

    def create_customer_for_tests(self, *, tenant_id: str) -> dict:
        with self.lock:
            return self._customer_create({"name": "test", "metadata": {"tenant_id": tenant_id}})

    def live_events(self, event_name: str | None = None) -> list[dict]:
        return [
            event
            for event in self.meter_events.values()
            if not event["_canceled"] and (event_name is None or event["event_name"] == event_name)
        ]

    def totals(self, event_name: str, customer_id: str) -> dict[int, Decimal]:
        """Live meter event value per timestamp for one customer (what Stripe would bill)."""
        totals: dict[int, Decimal] = {}
        for event in self.live_events(event_name):
            if event["payload"]["stripe_customer_id"] == customer_id:
                totals[event["timestamp"]] = totals.get(event["timestamp"], Decimal(0)) + Decimal(
                    event["payload"]["value"]
                )
        return totals

    # --- HTTP ----------------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode() if length else ""
        url = urlsplit(request.path)
        params = parse_form(raw if method == "POST" else url.query)
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            self.requests.append((method, url.path))
            try:
                if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                    raise StripeFailure(401, "invalid_request_error", "Invalid API Key provided.")
                if self.failures_left > 0:
                    self.failures_left -= 1
                    raise StripeFailure(self.failure_status, "api_error", "Something went wrong on Stripe's end.")
                key = request.headers.get("Idempotency-Key") if method == "POST" else None
                cache_key = f"{method} {url.path} {key}"
                if key and cache_key in self.idempotency:
                    cached_params, body, status, headers = self.idempotency[cache_key]
                    if cached_params != params:
                        raise StripeFailure(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they were first "
                            "used with.",
                        )
                else:
                    status, headers = 200, {}
                    try:
                        body = self.route(method, url.path, params)
                    except StripeFailure as failure:
                        status, body = failure.status, failure.body
                        if failure.status < 500:
                            headers = {"Stripe-Should-Retry": "false"}
                    if key:
                        self.idempotency[cache_key] = (params, body, status, {**headers, "Idempotent-Replayed": "true"})
            except StripeFailure as failure:
                status, body = failure.status, failure.body
                headers = {"Stripe-Should-Retry": "true"} if status >= 500 else {}
            drop = False
            if status == 200 and method != "GET":
                if self.drops_left > 0 and self.drop_path in (None, url.path):
                    self.drops_left -= 1
                    drop = True
                elif self.drop_rate and self.random.random() < self.drop_rate:
                    drop = True
            if drop:
                self.dropped += 1
        if drop:
            # Applied, but the answer is lost: the client sees the connection close.
            request.close_connection = True
            request.connection.close()
            return
        payload = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)

    def route(self, method: str, path: str, params: dict) -> dict:
        routes = [
            ("POST", r"/v1/customers", lambda m: self._customer_create(params)),
            ("GET", r"/v1/customers/search", lambda m: self._customer_search(params)),
            ("GET", r"/v1/customers", lambda m: self._list(self.customers, params, email=params.get("email"))),
            ("GET", r"/v1/customers/([^/]+)", lambda m: _public(self._get(self.customers, "customer", m[1]))),
            ("DELETE", r"/v1/customers/([^/]+)", lambda m: self._customer_delete(m[1])),
            ("POST", r"/v1/subscriptions", lambda m: self._subscription_create(params)),
            (
                "GET",
                r"/v1/subscriptions",
                lambda m: self._subscription_list(params),
            ),
            ("GET", r"/v1/subscriptions/([^/]+)", lambda m: self._get(self.subscriptions, "subscription", m[1])),
            ("POST", r"/v1/subscriptions/([^/]+)", lambda m: self._subscription_update(m[1], params)),
            ("DELETE", r"/v1/subscriptions/([^/]+)", lambda m: self._subscription_cancel(m[1], params)),
            ("POST", r"/v1/prices", lambda m: self._price_create(params)),
            ("GET", r"/v1/prices/([^/]+)", lambda m: self._get(self.prices, "price", m[1])),
            ("POST", r"/v1/billing/meters", lambda m: self._meter_create(params)),
            ("GET", r"/v1/billing/meters", lambda m: self._list(self.meters, params)),
            ("GET", r"/v1/billing/meters/([^/]+)", lambda m: self._get(self.meters, "billing meter", m[1])),
            ("POST", r"/v1/billing/meters/([^/]+)/deactivate", lambda m: self._meter_deactivate(m[1])),
            ("GET", r"/v1/billing/meters/([^/]+)/event_summaries", lambda m: self._summaries(m[1], params)),
            ("POST", r"/v1/billing/meter_events", lambda m: self._meter_event_create(params)),
            ("POST", r"/v1/billing/meter_event_adjustments", lambda m: self._adjustment_create(params)),
        ]
        for route_method, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return action(match)
        raise invalid(f"Unrecognized request URL ({method}: {path}).", code="", status=404)

    # --- resources -----------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(7)}"

    def _get(self, store: dict, kind: str, object_id: str) -> dict:
        if object_id not in store:
            raise no_such(kind, object_id)
        return store[object_id]

    def _list(self, store: dict, params: dict, **filters) -> dict:
        items = [
            item
            for item in store.values()
            if all(value is None or item.get(key) == value for key, value in filters.items())
        ]
        limit = int(params.get("limit", 10))
        return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": ""}

    def _metadata(self, params: dict) -> dict:
        metadata = params.get("metadata", {})
        if not isinstance(metadata, dict):
            raise invalid("Invalid object", param="metadata")
        for key, value in metadata.items():
            if len(key) > 40 or len(value) > 500:
                raise invalid("Metadata keys are limited to 40 characters and values to 500.", param="metadata")
        return metadata

    def _customer_create(self, params: dict) -> dict:
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "name": params.get("name"),
            "email": params.get("email"),
            "metadata": self._metadata(params),
            "created": int(self.now()),
            "livemode": False,
        }
        self.customers[customer["id"]] = {**customer, "_searchable_at": self.now()}
        return customer

    def _customer_search(self, params: dict) -> dict:
        query = params.get("query")
        if not query:
            raise missing("query")
        clauses = []
        for clause in re.split(r"\s+AND\s+", query.strip()):
            match = re.fullmatch(r"metadata\['([^']+)'\]:'([^']*)'", clause.strip())
            if not match:
                raise invalid(f"The query could not be parsed near: {clause}", param="query")
            clauses.append((match[1], match[2]))
        visible_before = self.now() - self.search_lag_seconds
        items = [
            customer
            for customer in self.customers.values()
            if customer["_searchable_at"] <= visible_before
            and all(customer["metadata"].get(key) == value for key, value in clauses)
        ]
        limit = int(params.get("limit", 10))
        data = [_public(item) for item in items[:limit]]
        return {"object": "search_result", "data": data, "has_more": len(items) > limit, "url": "/v1/customers/search"}

    def _customer_delete(self, customer_id: str) -> dict:
        self._get(self.customers, "customer", customer_id)
        del self.customers[customer_id]
        for subscription in self.subscriptions.values():
            if subscription["customer"] == customer_id:
                subscription["status"] = "canceled"
        return {"id": customer_id, "object": "customer", "deleted": True}

    def _subscription_create(self, params: dict) -> dict:
        customer_id = params.get("customer")
        if not customer_id:
            raise missing("customer")
        if customer_id not in self.customers:
            raise no_such("customer", customer_id, "customer")
        items = params.get("items")
        if not isinstance(items, list) or not items:
            raise missing("items")
        data = []
        for index, item in enumerate(items):
            price_id = item.get("price") if isinstance(item, dict) else None
            if not price_id:
                raise missing(f"items[{index}][price]")
            if price_id not in self.prices:
                raise no_such("price", price_id, f"items[{index}][price]")
            data.append({"id": self._id("si"), "object": "subscription_item", "price": self.prices[price_id]})
        subscription = {
            "id": self._id("sub"),
            "object": "subscription",
            "customer": customer_id,
            "status": "active",
            "items": {"object": "list", "data": data, "has_more": False, "url": ""},
            "metadata": self._metadata(params),
            "created": int(self.now()),
            "livemode": False,
            "canceled_at": None,
        }
        self.subscriptions[subscription["id"]] = subscription
        return subscription

    def _subscription_list(self, params: dict) -> dict:
        # Stripe lists subscriptions that are not canceled unless asked for status=all / canceled.
        status = params.get("status")
        store = {
            key: subscription
            for key, subscription in self.subscriptions.items()
            if status == "all" or (subscription["status"] == status if status else subscription["status"] != "canceled")
        }
        return self._list(store, params, customer=params.get("customer"))

    def _subscription_update(self, subscription_id: str, params: dict) -> dict:
        subscription = self._get(self.subscriptions, "subscription", subscription_id)
        if subscription["status"] == "canceled":
            raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
        items = subscription["items"]["data"]
        for index, item in enumerate(params.get("items") or []):
            if item.get("deleted") == "true":
                if not any(existing["id"] == item.get("id") for existing in items):
                    raise no_such("subscription item", item.get("id", ""), f"items[{index}][id]")
                items = [existing for existing in items if existing["id"] != item["id"]]
            elif item.get("price"):
                if item["price"] not in self.prices:
                    raise no_such("price", item["price"], f"items[{index}][price]")
                if any(existing["price"]["id"] == item["price"] for existing in items):
                    raise invalid(
                        "Cannot add multiple subscription items with the same plan: " + item["price"],
                        param=f"items[{index}][price]",
                    )
                items.append({"id": self._id("si"), "object": "subscription_item", "price": self.prices[item["price"]]})
            else:
                raise missing(f"items[{index}][price]")
        if not items:
            raise invalid("A subscription must have at least one active plan.", param="items")
        subscription["items"]["data"] = items
        if "metadata" in params:
            subscription["metadata"] = {**subscription["metadata"], **self._metadata(params)}
        return subscription

    def _subscription_cancel(self, subscription_id: str, params: dict) -> dict:
        subscription = self._get(self.subscriptions, "subscription", subscription_id)
        if subscription["status"] == "canceled":
            raise invalid(
                f"No such subscription: '{subscription_id}'; it has been canceled.",
                code="resource_missing",
                status=404,
            )
        subscription["status"] = "canceled"
        subscription["canceled_at"] = int(self.now())
        if params.get("invoice_now") == "true":
            self._final_invoice(subscription)
        return subscription

    def _final_invoice(self, subscription: dict) -> None:
        invoiced = {identifier for invoice in self.invoices for identifier in invoice["_event_identifiers"]}
        meter_ids = {item["price"]["recurring"].get("meter") for item in subscription["items"]["data"]}
        event_names = {self.meters[meter_id]["event_name"] for meter_id in meter_ids if meter_id in self.meters}
        lines: dict[str, Decimal] = {}
        identifiers = []
        for event in self.live_events():
            if (
                event["event_name"] in event_names
                and event["payload"]["stripe_customer_id"] == subscription["customer"]
                and event["identifier"] not in invoiced
            ):
                lines[event["event_name"]] = lines.get(event["event_name"], Decimal(0)) + Decimal(
                    event["payload"]["value"]
                )
                identifiers.append(event["identifier"])
        self.invoices.append(
            {
                "id": self._id("in"),
                "object": "invoice",
                "customer": subscription["customer"],
                "subscription": subscription["id"],
                "billing_reason": "subscription_cycle",
                "usage": lines,
                "_event_identifiers": identifiers,
            }
        )

    def _price_create(self, params: dict) -> dict:
        for field in ("currency",):
            if not params.get(field):
                raise missing(field)
        recurring = params.get("recurring") or {}
        if recurring.get("usage_type") == "metered" and recurring.get("meter") not in self.meters:
            raise invalid("Metered prices need an existing billing meter.", param="recurring[meter]")
        price = {
            "id": self._id("price"),
            "object": "price",
            "currency": params["currency"],
            "unit_amount": int(params.get("unit_amount") or 0),
            "recurring": recurring,
            "livemode": False,
        }
        self.prices[price["id"]] = price
        return price

    def _meter_create(self, params: dict) -> dict:
        for field in ("display_name", "event_name"):
            if not params.get(field):
                raise missing(field)
        formula = (params.get("default_aggregation") or {}).get("formula")
        if formula not in ("sum", "count", "last"):
            raise missing("default_aggregation[formula]")
        if any(m["event_name"] == params["event_name"] and m["status"] == "active" for m in self.meters.values()):
            raise invalid(f"An active meter with event_name {params['event_name']} already exists.", param="event_name")
        meter = {
            "id": self._id("mtr"),
            "object": "billing.meter",
            "display_name": params["display_name"],
            "event_name": params["event_name"],
            "status": "active",
            "default_aggregation": {"formula": formula},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
            "created": int(self.now()),
            "livemode": False,
        }
        self.meters[meter["id"]] = meter
        return meter

    def _meter_deactivate(self, meter_id: str) -> dict:
        meter = self._get(self.meters, "billing meter", meter_id)
        meter["status"] = "inactive"
        return meter

    def _meter_event_create(self, params: dict) -> dict:
        event_name = params.get("event_name")
        if not event_name:
            raise missing("event_name")
        if len(event_name) > 100:
            raise invalid("event_name is limited to 100 characters.", param="event_name")
        payload = params.get("payload")
        if not isinstance(payload, dict) or not payload:
            raise missing("payload")
        if not any(m["event_name"] == event_name and m["status"] == "active" for m in self.meters.values()):
            raise invalid(f"No active meter was found for event_name {event_name}.", param="event_name")
        customer_id = payload.get("stripe_customer_id")
        if not customer_id:
            raise missing("payload[stripe_customer_id]")
        if customer_id not in self.customers:
            raise no_such("customer", customer_id, "payload[stripe_customer_id]")
        value = payload.get("value")
        if value is None:
            raise missing("payload[value]")
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise invalid("payload[value] must be a number.", param="payload[value]") from None
        if not number.is_finite():
            raise invalid("payload[value] must be a number.", param="payload[value]")
        now = self.now()
        timestamp = params.get("timestamp")
        if timestamp is None:
            timestamp = int(now)
        else:
            try:
                timestamp = int(timestamp)
            except ValueError:
                raise invalid("timestamp must be a Unix timestamp.", param="timestamp") from None
            if timestamp < now - 35 * DAY or timestamp > now + 300:
                raise invalid(
                    "Timestamp must be within the past 35 calendar days or up to 5 minutes in the future.",
                    param="timestamp",
                    code="timestamp_out_of_range",
                )
        identifier = params.get("identifier") or self._id("idmp")
        if len(identifier) > 100:
            raise invalid("identifier is limited to 100 characters.", param="identifier")
        if identifier in self.meter_events:
            if now - self.meter_events[identifier]["created"] <= DAY:
                raise invalid(
                    f"An event already exists with identifier {identifier}.",
                    param="identifier",
                    code="duplicate_meter_event",
                )
            # Stripe enforces identifier uniqueness over a rolling 24 hours only: a second copy
            # is recorded, and billed, beside the first (kept under another key).
            self.meter_events[f"{identifier} (copy received {int(now)})"] = self.meter_events.pop(identifier)
        event = {
            "object": "billing.meter_event",
            "event_name": event_name,
            "identifier": identifier,
            "payload": payload,
            "timestamp": timestamp,
            "created": int(now),
            "livemode": False,
        }
        self.meter_events[identifier] = {**event, "_canceled": False}
        return event

    def _adjustment_create(self, params: dict) -> dict:
        event_name = params.get("event_name")
        if not event_name:
            raise missing("event_name")
        if params.get("type") != "cancel":
            raise missing("type")
        identifier = (params.get("cancel") or {}).get("identifier")
        if not identifier:
            raise missing("cancel[identifier]")
        event = self.meter_events.get(identifier)
        if event is None or event["event_name"] != event_name:
            raise invalid(f"No meter event with identifier {identifier}.", param="cancel[identifier]")
        if self.now() - event["created"] > DAY:
            raise invalid("Meter events can only be canceled within 24 hours.", code="out_of_window")
        event["_canceled"] = True
        adjustment = {
            "object": "billing.meter_event_adjustment",
            "event_name": event_name,
            "type": "cancel",
            "cancel": {"identifier": identifier},
            "status": "complete",
            "livemode": False,
        }
        self.adjustments.append(adjustment)
        return adjustment

    def _summaries(self, meter_id: str, params: dict) -> dict:
        meter = self._get(self.meters, "billing meter", meter_id)
        for field in ("customer", "start_time", "end_time"):
            if not params.get(field):
                raise missing(field)
        start, end = int(params["start_time"]), int(params["end_time"])
        total = sum(
            (
                Decimal(event["payload"]["value"])
                for event in self.live_events(meter["event_name"])
                if event["payload"]["stripe_customer_id"] == params["customer"] and start <= event["timestamp"] < end
            ),
            start=Decimal(0),
        )
        summary = {
            "id": self._id("mtrusg"),
            "object": "billing.meter_event_summary",
            "aggregated_value": float(total),
            "meter": meter_id,
            "start_time": start,
            "end_time": end,
            "livemode": False,
        }
        return {"object": "list", "data": [summary], "has_more": False, "url": ""}
