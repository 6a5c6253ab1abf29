import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    """Its own migration: on PostgreSQL, altering a table in the transaction that just updated
    its rows can fail on pending trigger events."""

    dependencies = [
        ("tenants", "0003_tenant_deleted"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='tenant',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('name'), condition=models.Q(('deleted__isnull', True), models.Q(('name', ''), _negated=True)), name='tenant_name_unique_while_not_deleted'),
        ),
    ]
