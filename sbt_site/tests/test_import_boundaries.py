"""The layers of docs/ARCHITECTURE.md, checked on the source.

- Services and selectors know nothing of HTTP: no DRF, no Django request/response objects, no
  OAuth request machinery (token models for issuing and revoking are data, and allowed).
- Views reach providers only through services and selectors, never a provider module.
- An app writes only its own models; another app's models it may read, and it changes them by
  calling that app's services.

Each rule is a small AST walk over the project's modules, and each is shown to fire on a
made-up module first, so a broken checker cannot pass silently.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "tenants", "events", "metering", "billing", "provisioning", "sbt_site")

HTTP_MODULES = (
    "rest_framework",
    "django.http",
    "oauthlib",
    "oauth2_provider.views",
    "oauth2_provider.contrib",
    "oauth2_provider.oauth2_backends",
    "oauth2_provider.oauth2_validators",
    # bearer-token lookup and validation belong to the API layer (codes and signing are data)
    "accounts.tokens.lookup",
    "accounts.tokens.validator",
)
HTTP_PACKAGES = ("accounts.tokens",)  # importing the package itself brings the lookup along
WRITES = {"create", "bulk_create", "update", "bulk_update", "delete", "get_or_create", "update_or_create", "save"}


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if "tests" in parts or "migrations" in parts:
            continue
        yield path


def _layer(path: Path) -> str | None:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if len(parts) >= 2 and parts[1] in ("services", "selectors"):
        return "domain"
    if len(parts) >= 2 and parts[1] == "api" and parts[0] != "sbt_site":
        return "view"
    return None


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, names bound) for every import statement in the tree."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, [alias.asname or alias.name.split(".")[0]]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.asname or alias.name for alias in node.names]))
    return found


def http_imports(tree: ast.AST) -> list[str]:
    return [module for module, _ in _imports(tree) if module.startswith(HTTP_MODULES) or module in HTTP_PACKAGES]


def provider_imports(tree: ast.AST) -> list[str]:
    hits = []
    for module, names in _imports(tree):
        if ".providers" in module or any(name == "providers" for name in names if module.count(".") == 0):
            hits.append(module)
    return hits


def foreign_model_writes(tree: ast.AST, app: str) -> list[str]:
    """``Model.objects....<write>(...)`` or ``Model(...).save()`` where Model is another app's."""
    foreign = {}
    for module, names in _imports(tree):
        owner = module.split(".")[0]
        if module == f"{owner}.models" and owner != app and owner in APPS:
            foreign.update(dict.fromkeys(names, owner))
    hits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES):
            continue
        root = node.func.value
        while isinstance(root, ast.Attribute | ast.Call):
            root = root.value if isinstance(root, ast.Attribute) else root.func
        if isinstance(root, ast.Name) and root.id in foreign:
            hits.append(f"{root.id}.…{node.func.attr}() (line {node.lineno})")
    return hits


def test_the_checks_fire_on_a_module_that_breaks_them():
    broken = ast.parse(
        "from rest_framework.response import Response\n"
        "from accounts.tokens import bearer_checks\n"
        "from accounts.tokens.codes import code_digest\n"
        "from metering.providers.native import meter_info\n"
        "from tenants.models import Tenant\n"
        "Tenant.objects.filter(pk=1).update(name='x')\n"
        "Tenant(name='y').save()\n"
        "Tenant.objects.filter(pk=1).exists()\n"
    )
    assert http_imports(broken) == ["rest_framework.response", "accounts.tokens"]
    assert provider_imports(broken) == ["metering.providers.native"]
    writes = [hit.split(" ")[0] for hit in foreign_model_writes(broken, "billing")]
    assert writes == ["Tenant.…update()", "Tenant.…save()"]
    assert foreign_model_writes(broken, "tenants") == []  # an app's own models are its to write


def _violations():
    http, providers, writes = [], [], []
    for app in APPS:
        for path in _modules(app):
            tree = ast.parse(path.read_text(), filename=str(path))
            name = str(path.relative_to(ROOT))
            layer = _layer(path)
            if layer == "domain":
                http += [f"{name}: {module}" for module in http_imports(tree)]
            if layer == "view":
                providers += [f"{name}: {module}" for module in provider_imports(tree)]
            writes += [f"{name}: {hit}" for hit in foreign_model_writes(tree, app)]
    return {"services/selectors import HTTP machinery": http, "views import providers": providers, "writes": writes}


@pytest.mark.parametrize("rule", ["services/selectors import HTTP machinery", "views import providers", "writes"])
def test_layers_hold(rule):
    assert _violations()[rule] == []
