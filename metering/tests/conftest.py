import pytest

from metering.interface import MeterSpec
from metering.models import Meter
from metering.services import meter_create
from tenants.models import Tenant
from tenants.tests.factories import TenantFactory


@pytest.fixture
def make_tenant(db):
    def make(name: str = "acme", active: bool = True) -> Tenant:
        return TenantFactory(name=name, active=active)

    return make


@pytest.fixture
def tenant(make_tenant):
    return make_tenant()


@pytest.fixture
def make_meter(db):
    def make(api_name: str = "api-calls", aggregation: str = "SUM", **fields) -> Meter:
        info = meter_create(spec=MeterSpec(api_name=api_name, label=api_name, aggregation=aggregation, **fields))
        return Meter.objects.get(pk=info.id)

    return make
