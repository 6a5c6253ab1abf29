import pytest
from django.db.migrations.state import ProjectState
from django_celery_beat.models import PeriodicTask

from sbt_site.schedules import PERIODIC_TASKS, seed_periodic_tasks


def test_nothing_to_seed_before_beat_tables_exist():
    # `migrate <app> <target>` on a fresh database sends post_migrate with a migration state that
    # has no beat models yet: seeding must wait for the migrate that creates them, not crash.
    assert seed_periodic_tasks(apps=ProjectState().apps) == 0


@pytest.mark.django_db
def test_seeding_creates_missing_tasks_and_never_touches_existing_ones():
    PeriodicTask.objects.all().delete()
    assert seed_periodic_tasks() == len(PERIODIC_TASKS)
    task = PeriodicTask.objects.get(task="events.sweep")
    task.enabled = False
    task.save()

    assert seed_periodic_tasks() == 0
    assert PeriodicTask.objects.get(task="events.sweep").enabled is False
