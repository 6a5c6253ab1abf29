"""POST /api/v1/usage/firehose: SBT's billing-ingestor records as Amazon Data Firehose delivers
them to an HTTP endpoint destination (Firehose's request and response format), stored once."""

import base64
import gzip
import json
import time
import uuid
from decimal import Decimal

import pytest
import requests

from metering.models import UsageEvent
from metering.services import firehose_event_id

ACCESS_KEY = "firehose-access-key-0123456789abcdef"
PATH = "/api/v1/usage/firehose"


def sbt_record(tenant_id, *, name="productsSold", value="42") -> dict:
    """A record as sbt-aws scripts/send-kinesis-data.sh builds it with jq: every value a string
    (--arg), the timestamp a random number."""
    return {
        "type": "ProductCount",
        "tenantId": str(tenant_id),
        "metric": {"name": name, "unit": "Count", "value": value},
        "timestamp": "8417215390",
    }


def delivery(records: list, *, request_id: str | None = None, raw: list | None = None) -> dict:
    """Firehose's request body: the request id, its time in epoch milliseconds, base64 records
    (the script pipes jq's output, newline included, through base64)."""
    encoded = raw if raw is not None else [json.dumps(record) + "\n" for record in records]
    return {
        "requestId": request_id or str(uuid.uuid4()),
        "timestamp": int(time.time() * 1000),
        "records": [{"data": base64.b64encode(text.encode()).decode()} for text in encoded],
    }


def firehose_headers(body: dict, key: str = ACCESS_KEY) -> dict:
    return {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": body.get("requestId", ""),
        "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/sbt-ingestor",
        "X-Amz-Firehose-Access-Key": key,
    }


@pytest.fixture
def firehose_on(settings):
    settings.SBT = {**getattr(settings, "SBT", {}), "USAGE_FIREHOSE_ACCESS_KEY": ACCESS_KEY}


@pytest.fixture
def products_sold(make_meter):
    return make_meter(api_name="productsSold", aggregation="SUM")


def post(client, body, *, key: str = ACCESS_KEY, **extra):
    headers = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in firehose_headers(body, key).items()}
    headers.pop("HTTP_CONTENT_TYPE")
    data = extra.pop("data", None) or json.dumps(body)
    return client.post(PATH, data=data, content_type="application/json", **headers, **extra)


def assert_firehose_answer(response, status: int, request_id: str) -> dict:
    """Firehose's response format: JSON with the request's id and a timestamp in epoch ms, plus
    errorMessage when it failed."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    answer = json.loads(response.content)
    assert answer["requestId"] == request_id
    assert isinstance(answer["timestamp"], int) and abs(answer["timestamp"] - time.time() * 1000) < 60_000
    assert ("errorMessage" in answer) == (status != 200)
    return answer


@pytest.mark.django_db(transaction=True)
def test_a_delivery_over_http_is_stored_once_even_when_firehose_retries_it(
    live_server, firehose_on, tenant, make_tenant, products_sold, make_meter
):
    other = make_tenant(name="globex")
    make_meter(api_name="plusProductsSold", aggregation="SUM", value_property="amount")
    body = delivery(
        [
            sbt_record(tenant.pk, value="42"),
            sbt_record(other.pk, value=7),
            sbt_record(tenant.pk, name="plusProductsSold", value="1.5"),
        ]
    )
    for _ in range(2):  # Firehose resends a delivery it got no 200 for, with the same request id
        response = requests.post(
            f"{live_server.url}{PATH}", data=json.dumps(body), headers=firehose_headers(body), timeout=30
        )
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["requestId"] == body["requestId"]
        assert set(response.json()) == {"requestId", "timestamp"}

    stored = {(event.event_id, event.tenant_id, event.meter_id, event.value) for event in UsageEvent.objects.all()}
    assert len(stored) == 3
    ids = {event_id for event_id, *_ in stored}
    assert ids == {firehose_event_id(request_id=body["requestId"], index=index) for index in range(3)}
    values = sorted((str(tenant_id), value) for _, tenant_id, _, value in stored)
    assert values == sorted(
        [(str(tenant.pk), Decimal("42")), (str(other.pk), Decimal("7")), (str(tenant.pk), Decimal("1.5"))]
    )


def test_a_gzip_delivery_is_accepted(client, firehose_on, tenant, products_sold):
    body = delivery([sbt_record(tenant.pk)])
    response = post(client, body, data=gzip.compress(json.dumps(body).encode()), HTTP_CONTENT_ENCODING="gzip")
    assert_firehose_answer(response, 200, body["requestId"])
    assert UsageEvent.objects.get().value == Decimal("42")


@pytest.mark.parametrize("key", ["", "wrong-key", ACCESS_KEY[:-1], ACCESS_KEY + "x"])
def test_a_missing_or_wrong_access_key_stores_nothing(client, firehose_on, tenant, products_sold, key):
    body = delivery([sbt_record(tenant.pk)])
    answer = assert_firehose_answer(post(client, body, key=key), 401, body["requestId"])
    assert "X-Amz-Firehose-Access-Key" in answer["errorMessage"]
    assert not UsageEvent.objects.exists()


def test_the_endpoint_is_off_until_an_access_key_is_configured(client, db):
    body = delivery([])
    answer = assert_firehose_answer(post(client, body, key=""), 403, body["requestId"])
    assert "USAGE_FIREHOSE_ACCESS_KEY" in answer["errorMessage"]


def test_one_bad_record_stores_nothing_and_names_it(client, firehose_on, tenant, products_sold):
    body = delivery(
        [
            sbt_record(tenant.pk),
            sbt_record(uuid.uuid4()),  # a tenant that does not exist
            sbt_record(tenant.pk, name="noSuchMeter"),
            sbt_record(tenant.pk, value="lots"),
            {"tenantId": str(tenant.pk)},
        ]
    )
    answer = assert_firehose_answer(post(client, body), 400, body["requestId"])
    message = answer["errorMessage"]
    assert "records.1.tenantId" in message and "unknown tenant" in message
    assert "records.2.metric.name" in message and "noSuchMeter" in message
    assert "records.3.metric.value" in message
    assert "records.4.metric" in message
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"records": []}',
        b'{"requestId": "r", "timestamp": "yesterday", "records": []}',
        b'{"requestId": "r", "timestamp": 1e400, "records": []}',
        b'{"requestId": "r", "timestamp": 99999999999999999999, "records": []}',
        b'{"requestId": "r", "timestamp": 1, "records": {}}',
        b'{"requestId": "r", "timestamp": 1, "records": [1]}',
        b'{"requestId": "r", "timestamp": 1, "records": [{"data": "%%%"}]}',
        b'{"requestId": "r", "timestamp": 1, "records": [{"data": "bm90IGpzb24="}]}',
        b'{"requestId": "' + b"r" * 300 + b'", "timestamp": 1, "records": []}',
        b'{"requestId": "r", "timestamp": NaN, "records": []}',
        b"\xff\xfe",
    ],
)
def test_a_malformed_delivery_is_a_400_in_firehose_shape(client, firehose_on, data):
    response = post(client, {"requestId": "header-id"}, data=data)
    assert response.status_code == 400, response.content
    answer = json.loads(response.content)
    assert answer["errorMessage"] and isinstance(answer["timestamp"], int)
    assert answer["requestId"] in ("header-id", "r", "r" * 300)


def test_a_broken_gzip_body_is_a_400(client, firehose_on):
    body = delivery([])
    compressed = gzip.compress(json.dumps(body).encode())
    for data in (b"not gzip at all", compressed[: len(compressed) // 2]):
        assert_firehose_answer(post(client, body, data=data, HTTP_CONTENT_ENCODING="gzip"), 400, body["requestId"])


def test_a_delivery_over_its_limit_is_a_413_and_the_apis_limit_does_not_apply(
    client, firehose_on, settings, tenant, products_sold
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = delivery([sbt_record(tenant.pk, value=n) for n in range(60)])
    assert len(json.dumps(body)) > 1_000
    assert_firehose_answer(post(client, body), 200, body["requestId"])
    assert UsageEvent.objects.count() == 60

    settings.SBT = {**settings.SBT, "USAGE_FIREHOSE_MAX_BODY_BYTES": 10_000}
    body = delivery([sbt_record(tenant.pk)] * 200)
    assert_firehose_answer(post(client, body), 413, body["requestId"])
    # A small gzip that inflates past the limit is refused the same way.
    zipped = gzip.compress(json.dumps(body).encode())
    assert len(zipped) < 10_000
    response = post(client, body, data=zipped, HTTP_CONTENT_ENCODING="gzip")
    assert_firehose_answer(response, 413, body["requestId"])
    assert UsageEvent.objects.count() == 60, "nothing more stored"


def test_only_post_is_answered(client, firehose_on):
    response = client.get(PATH, HTTP_X_AMZ_FIREHOSE_REQUEST_ID="rid")
    assert_firehose_answer(response, 405, "rid")
    assert response["Allow"].split(", ")[0] == "POST"


def test_more_records_than_one_usage_batch_are_stored_all_or_nothing(
    client, firehose_on, settings, tenant, products_sold
):
    settings.SBT = {**settings.SBT, "USAGE_MAX_BATCH": 10}
    good = delivery([sbt_record(tenant.pk, value=n) for n in range(25)])
    assert_firehose_answer(post(client, good), 200, good["requestId"])
    assert UsageEvent.objects.count() == 25

    bad_records = [sbt_record(tenant.pk, value=n) for n in range(25)]
    bad_records[23] = sbt_record(tenant.pk, value="NaN-ish")
    bad = delivery(bad_records)
    answer = assert_firehose_answer(post(client, bad), 400, bad["requestId"])
    assert "records.23.metric.value" in answer["errorMessage"], "named by its index in the delivery"
    assert UsageEvent.objects.count() == 25, "the first two chunks were rolled back"
