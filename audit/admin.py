"""The audit log in the console: read-only, filterable by what changed, who and how.

django-auditlog's own admin already refuses add and change; this one also never offers delete
(its own allows a cascade from elsewhere) and shows the actor an API client or a command was,
which the library's "User" column shows only for accounts.
"""

from auditlog.admin import LogEntryAdmin
from auditlog.filters import ResourceTypeFilter
from auditlog.models import LogEntry
from django.contrib import admin


class ViaFilter(admin.SimpleListFilter):
    title = "made through"
    parameter_name = "via"

    def lookups(self, request, model_admin):
        return [("admin", "the console"), ("api", "the API"), ("command", "a command"), ("system", "the system")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(additional_data__via=self.value())
        return queryset


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditLogEntryAdmin(LogEntryAdmin):
    list_display = ["created", "resource_url", "action", "msg_short", "actor_label", "reason"]
    list_filter = ["action", ResourceTypeFilter, ViaFilter, "timestamp"]
    search_fields = ["object_repr", "object_pk", "actor_email", "actor__username"]
    search_help_text = "What changed (its name or id) or who changed it (user name, client id, command)."
    readonly_fields = ["created", "resource_url", "action", "actor_label", "reason", "msg"]
    fieldsets = [
        (None, {"fields": ["created", "actor_label", "resource_url", "reason"]}),
        ("Changes (before → after)", {"fields": ["action", "msg"]}),
    ]

    @admin.display(description="actor", ordering="actor_email")
    def actor_label(self, entry):
        return (entry.additional_data or {}).get("actor") or entry.actor_email or "system"

    @admin.display(description="reason")
    def reason(self, entry):
        return (entry.additional_data or {}).get("reason", "")

    def has_delete_permission(self, request, obj=None):
        return False  # append-only
