"""Environment variables of pydantic settings classes, read from the code (no import, no execution).

A settings class is one that derives from pydantic's ``BaseSettings`` directly or through the
project's own classes, in any module (``class ProdAppSettings(AppSettings)`` where
``AppSettings(BaseAppSettings)`` and ``BaseAppSettings(BaseSettings)`` live elsewhere). Fields are
inherited; each field's variable is its alias when it has one (pydantic v1 ``Field(env=...)`` or
``Config.fields``, v2 ``validation_alias``/``alias``/``AliasChoices``), else the ``env_prefix``
(v1 ``class Config``, v2 ``model_config``, inherited too) plus the field name, upper-cased
(settings match variables case-insensitively unless ``case_sensitive``). A field with no default
is required: the class refuses to build without its variable.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field

from agents.inspection.detect.pyroutes import module_name

_ENV_KEYWORDS = ("validation_alias", "alias", "env")


@dataclass
class _Class:
    module: str
    node: ast.ClassDef
    imports: dict[str, str]  # local name -> "module.Name" it was imported as


@dataclass
class Settings:
    """What a settings class reads: variable names, and those without a default."""

    names: set[str] = field(default_factory=set)
    required: set[str] = field(default_factory=set)


def settings_env(sources: dict[str, str]) -> Settings:
    """Variables of every settings class in ``sources`` (path -> text); ``required`` holds those of
    the fields without a default in any class that is not a test's."""
    classes: dict[str, _Class] = {}  # "module.Name" -> class
    for rel in sorted(sources):
        text = sources[rel]
        if "class " not in text:
            continue
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        module = module_name(rel)
        imports = _imports(tree, module)
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                classes[f"{module}.{node.name}"] = _Class(module, node, imports)
    by_name: dict[str, list[str]] = {}
    for key in classes:
        by_name.setdefault(key.rsplit(".", 1)[1], []).append(key)
    resolver = _Resolver(classes, by_name)
    out = Settings()
    for key, cls in classes.items():
        if not resolver.is_settings(key):
            continue
        fields = resolver.variables(key)
        out.names |= {name for name, _ in fields.values()}
        if "test" not in cls.node.name.lower():
            out.required |= {name for name, required in fields.values() if required}
    return out


def _imports(tree: ast.Module, module: str) -> dict[str, str]:
    out: dict[str, str] = {}
    package = module.rsplit(".", 1)[0] if "." in module else ""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .base import X
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join([*parts, *([base] if base else [])])
            for alias in node.names:
                out[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
    return out


class _Resolver:
    def __init__(self, classes: dict[str, _Class], by_name: dict[str, list[str]]) -> None:
        self.classes, self.by_name = classes, by_name
        self._settings: dict[str, bool] = {}

    def bases(self, key: str) -> list[str | None]:
        """Each base as a project class key, or None for an outside class (BaseSettings...)."""
        cls = self.classes[key]
        out: list[str | None] = []
        for base in cls.node.bases:
            dotted = ast.unparse(base)
            head, _, rest = dotted.partition(".")
            imported = cls.imports.get(head)
            candidates = [
                f"{imported}.{rest}" if imported and rest else imported,
                f"{cls.module}.{dotted}",
            ]
            found = next((c for c in candidates if c in self.classes), None)
            if found is None:
                same = self.by_name.get(dotted.rsplit(".", 1)[-1], [])
                external = imported is not None and not any(c.startswith(imported) for c in same)
                found = same[0] if len(same) == 1 and not external and same[0] != key else None
            out.append(found)
        return out

    def external_names(self, key: str) -> list[str]:
        return [ast.unparse(b).rsplit(".", 1)[-1] for b in self.classes[key].node.bases]

    def is_settings(self, key: str, seen: frozenset[str] = frozenset()) -> bool:
        if key in self._settings:
            return self._settings[key]
        result = any(
            (base is None and name == "BaseSettings")
            or (base is not None and base not in seen and self.is_settings(base, seen | {key}))
            for base, name in zip(self.bases(key), self.external_names(key), strict=True)
        )
        self._settings[key] = result
        return result

    def config(self, key: str, seen: frozenset[str] = frozenset()) -> dict[str, object]:
        """env_prefix, case_sensitive and v1 ``fields`` aliases, the bases' first, then the class's."""
        merged: dict[str, object] = {}
        for base in reversed(self.bases(key)):
            if base is not None and base not in seen:
                merged |= self.config(base, seen | {key})
        for statement in self.classes[key].node.body:
            if isinstance(statement, ast.ClassDef) and statement.name == "Config":
                for item in statement.body:
                    if isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name):
                        merged[item.targets[0].id] = _literal(item.value)
            elif isinstance(statement, (ast.Assign, ast.AnnAssign)) and _target(statement) == "model_config":
                value = statement.value
                if isinstance(value, ast.Call):
                    merged |= {k.arg: _literal(k.value) for k in value.keywords if k.arg}
                elif isinstance(value, ast.Dict):
                    merged |= {
                        str(_literal(k)): _literal(v)
                        for k, v in zip(value.keys, value.values, strict=True)
                        if k
                    }
        return merged

    def fields(self, key: str, seen: frozenset[str] = frozenset()) -> dict[str, tuple[str | None, bool]]:
        """field -> (alias, required), inherited fields first (v1 ``Config.fields`` aliases applied)."""
        merged: dict[str, tuple[str | None, bool]] = {}
        for base in reversed(self.bases(key)):
            if base is not None and base not in seen:
                merged |= self.fields(base, seen | {key})
        for statement in self.classes[key].node.body:
            name = _target(statement)
            if name is None or name.startswith("_") or name == "model_config" or _is_classvar(statement):
                continue
            value = statement.value if isinstance(statement, (ast.Assign, ast.AnnAssign)) else None
            merged[name] = (_field_alias(value), _required(statement))
        return merged

    def variables(self, key: str) -> dict[str, tuple[str, bool]]:
        """field -> (variable, required) with the class's own configuration (a subclass's
        env_prefix applies to inherited fields too, as pydantic builds each class's fields)."""
        config = self.config(key)
        prefix = config.get("env_prefix") if isinstance(config.get("env_prefix"), str) else ""
        aliases = config.get("fields") if isinstance(config.get("fields"), dict) else {}
        sensitive = bool(config.get("case_sensitive"))
        out: dict[str, tuple[str, bool]] = {}
        for name, (alias, required) in self.fields(key).items():
            env = alias or _config_alias(aliases, name) or f"{prefix}{name}"  # type: ignore[arg-type]
            out[name] = (env if sensitive else env.upper(), required)
        return out


def _target(statement: ast.stmt) -> str | None:
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        return target.id if isinstance(target, ast.Name) else None
    return None


def _is_classvar(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.AnnAssign) and "ClassVar" in ast.unparse(statement.annotation)


def _required(statement: ast.stmt) -> bool:
    """No default: an annotation alone (not Optional), or ``Field(...)`` / ``Field()`` without one."""
    if not isinstance(statement, ast.AnnAssign):
        return False
    annotation = ast.unparse(statement.annotation)
    if "Optional" in annotation or "None" in annotation:
        return False
    value = statement.value
    if value is None:
        return True
    if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("Field"):
        if any(k.arg in ("default", "default_factory") for k in value.keywords):
            return False
        return not value.args or (isinstance(value.args[0], ast.Constant) and value.args[0].value is ...)
    return False


def _field_alias(value: ast.expr | None) -> str | None:
    if not isinstance(value, ast.Call):
        return None
    for keyword in _ENV_KEYWORDS:
        found = next((k.value for k in value.keywords if k.arg == keyword), None)
        name = _first_name(found)
        if name:
            return name
    return None


def _first_name(node: ast.expr | None) -> str | None:
    """A string, the first of a list/tuple of them (v1 ``env=[...]``), or of ``AliasChoices(...)``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    items: Iterable[ast.expr] = ()
    if isinstance(node, (ast.List, ast.Tuple)):
        items = node.elts
    elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("AliasChoices"):
        items = node.args
    return next((i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)), None)


def _config_alias(aliases: dict[object, object], name: str) -> str | None:
    """v1 ``Config.fields = {"name": {"env": "X"}}`` or ``{"name": "X"}``."""
    entry = aliases.get(name)
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        env = entry.get("env") or entry.get("alias")
        if isinstance(env, str):
            return env
        if isinstance(env, (list, tuple)) and env and isinstance(env[0], str):
            return env[0]
    return None


def _literal(node: ast.expr | None) -> object:
    try:
        return ast.literal_eval(node) if node is not None else None
    except (ValueError, SyntaxError, TypeError):
        return None
