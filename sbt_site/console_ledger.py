from django.contrib import admin


class LedgerAdmin(admin.ModelAdmin):
    """Rows only services write and nothing deletes (events, deliveries, usage events and pushes,
    billing records): the console shows them, and changes them only through actions that call
    the services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
