from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "role", "tenant", "is_active", "is_staff", "date_joined")
    list_filter = ("role", "is_active", "is_staff")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Control plane", {"fields": ("role", "tenant")}))
